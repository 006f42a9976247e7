"""MLflow tracking endpoints and the artifact proxy: owners see and change their experiments,
runs and logged models (Default experiment shared, its runs private); the proxy refuses every
path attack of BAD_INPUTS.md "Artifact paths" with a 400 and reads nothing outside storage."""

import os

import pytest

from registry import storage, tracking
from registry.models import Experiment, RunParam
from tests.mlflow_support import artifact_root, as_user, error  # noqa: F401 — fixture

ART = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture
def run(world, artifact_root):  # noqa: F811
    body = as_user("alice").post("runs/create", {"experiment_id": "0", "run_name": "train"}).json()["run"]
    return body["info"]


# --- Experiments ------------------------------------------------------------------------------
def test_experiments(world):
    alice, eve = as_user("alice"), as_user("eve")
    default = alice.get("experiments/get", {"experiment_id": "0"}).json()["experiment"]
    assert default["name"] == "Default" and default["artifact_location"] == "mlflow-artifacts:/0"
    error(alice.get("experiments/get-by-name", {"experiment_name": "iris"}), 404, "RESOURCE_DOES_NOT_EXIST")
    exp_id = alice.post("experiments/create", {"name": "iris"}).json()["experiment_id"]
    assert alice.get("experiments/get-by-name", {"experiment_name": "iris"}).json()["experiment"]["experiment_id"] == exp_id
    error(alice.post("experiments/create", {"name": "iris"}), 400, "RESOURCE_ALREADY_EXISTS")
    error(alice.post("experiments/create", {"name": "x", "artifact_location": "/etc"}), 400, "INVALID_PARAMETER_VALUE")
    error(alice.post("experiments/create", {"name": "x" * 600}), 400, "INVALID_PARAMETER_VALUE")
    # eve neither sees alice's experiment nor may log into it.
    error(eve.get("experiments/get", {"experiment_id": exp_id}), 404, "RESOURCE_DOES_NOT_EXIST")
    error(eve.get("experiments/get-by-name", {"experiment_name": "iris"}), 404, "RESOURCE_DOES_NOT_EXIST")
    error(eve.post("runs/create", {"experiment_id": exp_id}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert [e["name"] for e in eve.post("experiments/search", {"max_results": 10}).json()["experiments"]] == ["Default"]
    assert {e["name"] for e in alice.post("experiments/search", {}).json()["experiments"]} == {"Default", "iris"}
    assert {e["name"] for e in as_user("admin").get("experiments/search").json()["experiments"]} == {"Default", "iris"}
    alice.post("experiments/set-experiment-tag", {"experiment_id": exp_id, "key": "team", "value": "ml"})
    assert [e["name"] for e in alice.post("experiments/search", {"filter": "tags.team = 'ml'"}).json()["experiments"]] == ["iris"]
    assert [e["name"] for e in alice.post("experiments/search", {"filter": "name LIKE 'Def%'"}).json()["experiments"]] == ["Default"]
    error(alice.post("experiments/search", {"filter": "params.x = 'y'"}), 400, "INVALID_PARAMETER_VALUE")
    error(eve.post("experiments/set-experiment-tag", {"experiment_id": exp_id, "key": "k", "value": "v"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert Experiment.objects.get(pk=exp_id).owner == world.alice


# --- Runs -------------------------------------------------------------------------------------
def test_runs(world, run):
    alice = as_user("alice")
    run_id = run["run_id"]
    assert run["artifact_uri"] == f"mlflow-artifacts:/0/{run_id}/artifacts" and run["run_name"] == "train"
    assert alice.post("runs/log-parameter", {"run_id": run_id, "run_uuid": run_id, "key": "lr", "value": "0.1"}).json() == {}
    assert alice.post("runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.1"}).status_code == 200  # same value
    error(alice.post("runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.2"}), 400, "INVALID_PARAMETER_VALUE")
    for step, value in enumerate([0.5, 0.7, 0.9]):
        alice.post("runs/log-metric", {"run_id": run_id, "key": "acc", "value": value, "timestamp": 1000 + step, "step": step})
    batch = {
        "run_id": run_id,
        "metrics": [{"key": "loss", "value": "NaN", "timestamp": 1, "step": 0}],
        "params": [{"key": "depth", "value": "3"}],
        "tags": [{"key": "mlflow.source.name", "value": "train.py"}],
    }
    assert alice.post("runs/log-batch", batch).json() == {}
    datasets = [{"tags": [{"key": "mlflow.data.context", "value": "training"}],
                 "dataset": {"name": "iris", "digest": "abc123", "source_type": "code", "source": "{}"}}]
    assert alice.post("runs/log-inputs", {"run_id": run_id, "datasets": datasets}).json() == {}
    history = alice.get("metrics/get-history", {"run_id": run_id, "metric_key": "acc"}).json()["metrics"]
    assert [m["value"] for m in history] == [0.5, 0.7, 0.9]
    assert alice.post("runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": 5000}).json()["run_info"]["status"] == "FINISHED"
    got = alice.get("runs/get", {"run_id": run_id}).json()["run"]
    assert {m["key"]: m["value"] for m in got["data"]["metrics"]} == {"acc": 0.9, "loss": "NaN"}
    assert {p["key"] for p in got["data"]["params"]} == {"lr", "depth"}
    assert got["inputs"]["dataset_inputs"][0]["dataset"]["name"] == "iris"
    assert got["info"]["end_time"] == 5000
    assert [r["info"]["run_id"] for r in alice.post("runs/search", {"experiment_ids": ["0"]}).json()["runs"]] == [run_id]


def test_run_search(world, run):
    alice = as_user("alice")
    other = alice.post("runs/create", {"experiment_id": "0", "run_name": "second", "start_time": 1}).json()["run"]["info"]["run_id"]
    first = run["run_id"]
    alice.post("runs/log-batch", {"run_id": first, "params": [{"key": "lr", "value": "0.1"}],
                                  "metrics": [{"key": "acc", "value": 0.2, "timestamp": 1, "step": 0},
                                              {"key": "acc", "value": 0.95, "timestamp": 2, "step": 1}],
                                  "tags": [{"key": "team", "value": "ml"}]})
    alice.post("runs/log-batch", {"run_id": other, "params": [{"key": "lr", "value": "0.01"}],
                                  "metrics": [{"key": "acc", "value": 0.9, "timestamp": 1, "step": 0},
                                              {"key": "acc", "value": 0.5, "timestamp": 2, "step": 1}]})
    alice.post("runs/update", {"run_id": other, "status": "FINISHED"})

    def found(**body):
        response = alice.post("runs/search", {"experiment_ids": ["0"], **body})
        assert response.status_code == 200, response.content
        return ["first" if r["info"]["run_id"] == first else "second" for r in response.json()["runs"]]

    assert found() == ["first", "second"]  # newest first
    assert found(filter="params.lr = '0.1'") == ["first"]
    assert found(filter="params.lr LIKE '0.0%'") == ["second"]
    assert found(filter="metrics.acc > 0.9") == ["first"]  # latest values: 0.95 and 0.5
    assert found(filter="metrics.acc < 0.6") == ["second"]
    assert found(filter="metrics.acc >= 0.5 AND params.lr != '0.1'") == ["second"]
    assert found(filter="tags.team = 'ml'") == ["first"]
    assert found(filter="attributes.status = 'FINISHED'") == ["second"]
    assert found(filter="attributes.run_name IN ('second')") == ["second"]
    assert found(filter=f"attributes.run_id = '{first}'") == ["first"]
    assert found(filter="attributes.start_time < 100") == ["second"]
    assert found(order_by=["start_time ASC"]) == ["second", "first"]
    assert found(order_by=["attributes.run_name DESC"]) == ["first", "second"]  # "train" > "second"
    assert found(order_by=["run_name ASC"]) == ["second", "first"]
    assert found(max_results=1)[0] == "first"
    for bad in ["metrics.acc LIKE '1'", "metrics.acc > 'high'", "params.lr > 1", "foo = 'x'", "metrics.acc > 1 OR x = 1",
                "attributes.start_time = 'soon'"]:
        error(alice.post("runs/search", {"experiment_ids": ["0"], "filter": bad}), 400, "INVALID_PARAMETER_VALUE")
    assert found(order_by=["metrics.acc DESC"]) == ["first", "second"]  # latest values 0.95, 0.5
    assert found(order_by=["params.lr ASC"]) == ["second", "first"]
    assert as_user("eve").post("runs/search", {"experiment_ids": ["0"], "filter": "params.lr = '0.1'"}).json() == {"runs": []}


def test_runs_are_their_owners(world, run):
    eve = as_user("eve")
    run_id = run["run_id"]
    error(eve.get("runs/get", {"run_id": run_id}), 404, "RESOURCE_DOES_NOT_EXIST")
    error(eve.post("runs/log-parameter", {"run_id": run_id, "key": "x", "value": "1"}), 404, "RESOURCE_DOES_NOT_EXIST")
    error(eve.post("runs/log-batch", {"run_id": run_id, "params": [{"key": "x", "value": "1"}]}), 404, "RESOURCE_DOES_NOT_EXIST")
    error(eve.post("runs/update", {"run_id": run_id, "status": "KILLED"}), 404, "RESOURCE_DOES_NOT_EXIST")
    error(eve.get("metrics/get-history", {"run_id": run_id, "metric_key": "acc"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert eve.post("runs/search", {"experiment_ids": ["0"]}).json() == {"runs": []}
    assert not RunParam.objects.filter(key="x").exists()
    assert as_user("admin").get("runs/get", {"run_id": run_id}).status_code == 200


# --- Logged models ----------------------------------------------------------------------------
def test_logged_models(world, run):
    alice, eve = as_user("alice"), as_user("eve")
    created = alice.post("logged-models", {"experiment_id": "0", "name": "model", "source_run_id": run["run_id"],
                                           "model_type": "sklearn", "tags": [{"key": "a", "value": "b"}]}).json()["model"]
    mid = created["info"]["model_id"]
    assert created["info"]["artifact_uri"] == f"mlflow-artifacts:/0/models/{mid}/artifacts"
    assert created["info"]["status"] == "LOGGED_MODEL_PENDING"
    done = alice.patch(f"logged-models/{mid}", {"model_id": mid, "status": "LOGGED_MODEL_READY"}).json()["model"]
    assert done["info"]["status"] == "LOGGED_MODEL_READY"
    alice.patch(f"logged-models/{mid}/tags", {"tags": [{"key": "mlflow.modelVersions", "value": "[]"}]})
    assert {t["key"] for t in alice.get(f"logged-models/{mid}").json()["model"]["info"]["tags"]} == {"a", "mlflow.modelVersions"}
    found = alice.post("logged-models/search", {"experiment_ids": ["0"], "filter": "name = 'model'"}).json()["models"]
    assert [m["info"]["model_id"] for m in found] == [mid]
    assert alice.post("logged-models/search", {"experiment_ids": ["0"], "filter": "name = 'other'"}).json() == {"models": []}
    error(alice.post("logged-models/search", {"experiment_ids": ["0"], "filter": "name = 'a' OR name = 'b'"}), 400, "INVALID_PARAMETER_VALUE")
    error(eve.get(f"logged-models/{mid}"), 404, "RESOURCE_DOES_NOT_EXIST")
    error(eve.patch(f"logged-models/{mid}", {"status": "LOGGED_MODEL_READY"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert eve.post("logged-models/search", {"experiment_ids": ["0"]}).json() == {"models": []}
    error(eve.post("logged-models", {"experiment_id": "0", "source_run_id": run["run_id"]}), 404, "RESOURCE_DOES_NOT_EXIST")
    error(alice.get("logged-models/m-nope"), 404, "RESOURCE_DOES_NOT_EXIST")
    error(alice.delete(f"logged-models/{mid}/tags/bad%00key"), 400, "INVALID_PARAMETER_VALUE")
    error(alice.get(f"logged-models/{mid}%00"), 404, "RESOURCE_DOES_NOT_EXIST")


# --- Artifact proxy ---------------------------------------------------------------------------
def test_artifacts_round_trip(world, run, artifact_root):  # noqa: F811
    alice = as_user("alice")
    base = f"{ART}/0/{run['run_id']}/artifacts"
    assert alice.put_bytes(f"{base}/model/MLmodel", b"flavors: {}\n", "text/plain").status_code == 200
    assert alice.put_bytes(f"{base}/model/model.pkl", b"\x00\x01" * 1000).status_code == 200
    assert (artifact_root / "mlartifacts/0" / run["run_id"] / "artifacts/model/MLmodel").read_bytes() == b"flavors: {}\n"
    listing = alice.get(ART, {"path": f"0/{run['run_id']}/artifacts"}).json()
    assert listing == {"files": [{"path": "model", "is_dir": True}]}
    listing = alice.get(ART, {"path": f"0/{run['run_id']}/artifacts/model"}).json()["files"]
    assert listing == [{"path": "MLmodel", "is_dir": False, "file_size": 12},
                       {"path": "model.pkl", "is_dir": False, "file_size": 2000}]
    assert alice.get(ART, {"path": f"0/{run['run_id']}/artifacts/empty"}).json() == {}
    response = alice.get(f"{base}/model/MLmodel")
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"flavors: {}\n"
    error(alice.get(f"{base}/model/missing"), 404, "RESOURCE_DOES_NOT_EXIST")
    error(alice.get(f"{base}/model"), 404, "RESOURCE_DOES_NOT_EXIST")  # a directory is not a file


def test_uploaded_html_is_never_rendered(world, run, artifact_root):  # noqa: F811
    alice = as_user("alice")
    base = f"{ART}/0/{run['run_id']}/artifacts"
    for name, body in (("evil.html", b"<script>alert(1)</script>"), ("evil.svg", b"<svg onload=alert(1)/>")):
        alice.put_bytes(f"{base}/{name}", body, "text/html")
        response = alice.get(f"{base}/{name}")
        assert response["Content-Type"] == "application/octet-stream"
        assert response["Content-Disposition"].startswith("attachment")
        assert response["X-Content-Type-Options"] == "nosniff"


def test_artifacts_are_their_owners(world, run, artifact_root):  # noqa: F811
    base = f"{ART}/0/{run['run_id']}/artifacts"
    as_user("alice").put_bytes(f"{base}/a.txt", b"secret")
    eve = as_user("eve")
    error(eve.get(f"{base}/a.txt"), 404, "RESOURCE_DOES_NOT_EXIST")
    error(eve.get(ART, {"path": f"0/{run['run_id']}/artifacts"}), 404, "RESOURCE_DOES_NOT_EXIST")
    error(eve.put_bytes(f"{base}/a.txt", b"overwritten"), 404, "RESOURCE_DOES_NOT_EXIST")
    error(as_user(None).get(f"{base}/a.txt"), 401, "UNAUTHENTICATED")
    assert (artifact_root / "mlartifacts/0" / run["run_id"] / "artifacts/a.txt").read_bytes() == b"secret"


def test_artifact_path_attacks_are_400(world, run, artifact_root, tmp_path):  # noqa: F811
    alice = as_user("alice")
    run_id = run["run_id"]
    outside = tmp_path / "outside.txt"
    outside.write_text("do not read")
    run_dir = artifact_root / "mlartifacts/0" / run_id / "artifacts"
    run_dir.mkdir(parents=True)
    os.symlink(outside, run_dir / "link.txt")
    os.symlink(tmp_path, run_dir / "linkdir")
    gets = [
        f"{ART}/0/{run_id}/artifacts/%2E%2E%2F%2E%2E%2Fpath",
        f"{ART}/0/{run_id}/artifacts/..%2f..%2f..%2f{run_id}",
        f"{ART}/0/{run_id}/artifacts/%252e%252e%252f%252e%252e%252fx",  # double-encoded
        f"{ART}/0/{run_id}/artifacts/passwd%00.jpg",
        f"{ART}//etc/passwd",
        f"{ART}/file://etc/passwd",
        f"{ART}/C:/Windows/win.ini",
        f"{ART}/0/{run_id}/artifacts/a\\..\\..\\x",
        f"{ART}/0/{run_id}/artifacts/link.txt",  # symlink out of storage
        f"{ART}/0/{run_id}/artifacts/linkdir/outside.txt",
        f"{ART}/0/{run_id}/artifacts/./x",
        f"{ART}/0/{run_id}/notartifacts/x",
        f"{ART}/0",
        f"{ART}/mlartifacts/0/{run_id}/artifacts/x",
    ]
    for url in gets:
        response = alice.get(url)
        assert response.status_code == 400, (url, response.status_code)
        assert b"do not read" not in b"".join(getattr(response, "streaming_content", [response.content]))
    for path in ["../../../../etc/passwd", f"0/{run_id}/artifacts/../../../../etc", "/etc", "%2e%2e%2f", "",
                 f"0/{run_id}/artifacts/linkdir"]:
        error(alice.get(ART, {"path": path}), 400, "INVALID_PARAMETER_VALUE")
    logged = tracking.logged_model_create(actor=world.alice, experiment_id="0", name="m", source_run_id=run_id)
    for url in [f"{ART}/0/{run_id}/artifacts/..%2f..%2fescape.txt", f"{ART}/0/{run_id}/escape.txt",
                f"{ART}/0/{run_id}/artifacts/linkdir/new.txt", f"{ART}/0/{run_id}/artifacts",
                f"{ART}/0/{run_id}/artifacts/%2E%2E%2F%2E%2E%2Fescape.txt",
                f"{ART}/0/{run_id}/artifacts/%252e%252e%252f%252e%252e%252fescape.txt",
                f"{ART}/0/{run_id}/artifacts/escape.txt%00.jpg",
                f"{ART}//tmp/escape.txt", f"{ART}/file:///tmp/escape.txt", f"{ART}/C:/escape.txt",
                f"{ART}/0/{run_id}/artifacts/a\\..\\..\\escape.txt",
                f"{ART}/0/{run_id}/artifacts/link.txt",  # writing through a symlink that leaves storage
                f"{ART}/0/models/{logged.model_id}/escape.txt",  # beside the logged model's artifacts/
                f"{ART}/0/models/{logged.model_id}/artifacts/../../{run_id}/artifacts/x"]:
        response = alice.put_bytes(url, b"x")
        assert response.status_code == 400, (url, response.status_code)
    assert alice.put_bytes(f"{ART}/0/models/{logged.model_id}/artifacts/ok.txt", b"x").status_code == 200
    assert outside.read_text() == "do not read"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["artifacts", "outside.txt"])
    assert not (artifact_root / "mlartifacts/0" / "escape.txt").exists()


def test_version_files_are_read_with_execute(world, artifact_root):  # noqa: F811
    from django.core.files.base import ContentFile

    storage.artifact_storage().save(f"{storage.version_prefix(world.v1.pk)}/MLmodel", ContentFile(b"flavors: {}\n"))
    url = f"{ART}/registered-models/prod.ml_team.iris/1/MLmodel"
    assert b"".join(as_user("eve").get(url).streaming_content) == b"flavors: {}\n"
    listing = as_user("eve").get(ART, {"path": "registered-models/prod.ml_team.iris/1"}).json()
    assert listing == {"files": [{"path": "MLmodel", "is_dir": False, "file_size": 12}]}
    error(as_user("oscar").get(url), 404, "RESOURCE_DOES_NOT_EXIST")
    error(as_user("gina").get(url), 404, "RESOURCE_DOES_NOT_EXIST")
    error(as_user("alice").put_bytes(url, b"changed"), 403, "PERMISSION_DENIED")
    error(as_user("alice").get(f"{ART}/registered-models/prod.ml_team.iris"), 400, "INVALID_PARAMETER_VALUE")


def test_tracking_domain_refuses_foreign_ids(world):
    from registry.errors import NotFound

    for bad in ("../../etc", "", None, "0123456789abcdef0123456789abcdeg"):
        with pytest.raises(NotFound):
            tracking.run_get(world.alice, bad)


def test_uploads_have_a_size_limit(world, run, artifact_root, settings):  # noqa: F811
    settings.MLFLOW_ARTIFACT_MAX_BYTES = 10
    base = f"{ART}/0/{run['run_id']}/artifacts"
    assert as_user("alice").put_bytes(f"{base}/small.bin", b"x" * 10).status_code == 200
    error(as_user("alice").put_bytes(f"{base}/big.bin", b"x" * 11), 413, "INVALID_PARAMETER_VALUE")
    assert not (artifact_root / "mlartifacts/0" / run["run_id"] / "artifacts/big.bin").exists()


def test_no_field_of_any_wrong_type_causes_a_500(world, run, artifact_root):  # noqa: F811
    """The client retries 5xx answers (POST included), so every malformed request must be a 4xx.
    For every MLflow route, each field the view reads gets values of the wrong type, one at a
    time, on top of an otherwise valid request."""
    import inspect
    import re

    from registry.api.mlflow import urls

    alice = as_user("alice")
    run_id = run["run_id"]
    mid = alice.post("logged-models", {"experiment_id": "0", "source_run_id": run_id}).json()["model"]["info"]["model_id"]
    base = {
        "name": "prod.ml_team.iris", "new_name": "prod.ml_team.iris_x", "description": "d", "key": "k", "value": "v",
        "alias": "a1", "version": "1", "source": f"runs:/{run_id}/model", "run_id": run_id, "run_uuid": run_id,
        "model_id": mid, "tags": [{"key": "k", "value": "v"}], "stages": ["None"], "experiment_id": "0",
        "experiment_name": "Default", "experiment_ids": ["0"], "metrics": [{"key": "m", "value": 1, "timestamp": 1}],
        "params": [{"key": "p", "value": "1"}], "datasets": [], "models": [], "status": "FINISHED", "end_time": 1,
        "start_time": 1, "run_name": "r", "filter": "", "max_results": 5, "order_by": [], "page_token": "",
        "metric_key": "m", "timestamp": 1, "step": 0, "view_type": "ACTIVE_ONLY", "run_view_type": "ACTIVE_ONLY",
    }
    weird = [None, 1.5, [1], {"a": 1}, "\x00"]
    checked, failures = 0, set()
    destructive = ("Delete", "Rename")  # last, so the other routes run against live objects
    patterns = sorted(urls.urlpatterns, key=lambda p: p.callback.view_class.__name__.startswith(destructive))
    for pattern in patterns:
        view = pattern.callback.view_class
        if view.__name__ == "UnknownEndpoint":
            continue
        fields = set(re.findall(r'self\.(?:text|raw|get_list)\("(\w+)"', inspect.getsource(view)))
        if "_run_id(self)" in inspect.getsource(view):
            fields |= {"run_id", "run_uuid"}
        route = "/api/2.0/mlflow/" + str(pattern.pattern).replace("<str:model_id>", mid).replace("<path:key>", "k")
        methods = [m for m in ("get", "post", "patch", "delete") if hasattr(view, m)]
        for method in methods:
            for field in sorted(fields):
                for value in weird:
                    body = {**base, field: value}
                    try:
                        if method == "get":
                            params = {k: v for k, v in body.items() if v is not None and not isinstance(v, (list, dict))}
                            response = alice.client.get(route, params, **alice.headers)
                        else:
                            response = getattr(alice, method)(route, body)
                        status = response.status_code
                    except Exception as exc:  # the test client re-raises what would be a 500
                        status = f"{type(exc).__name__}: {exc}"
                    if not isinstance(status, int) or status >= 500:
                        failures.add((method, route, field, repr(value)[:20], str(status)[:120]))
                    checked += 1
    assert not failures, "\n".join(map(str, sorted(failures)))
    assert checked > 700


def test_a_one_megabyte_experiment_or_run_name_is_refused_fast(world):
    """BAD_INPUTS.md (CVE-2024-6838): 400 (or 413), quickly, nothing stored, the name not echoed."""
    import time

    from registry.models import Run

    alice = as_user("alice")
    assert alice.get("experiments/get", {"experiment_id": "0"}).status_code == 200  # Default exists from now on
    experiments, runs = Experiment.objects.count(), Run.objects.count()
    started = time.monotonic()
    for path, body in (("experiments/create", {"name": "x" * 1_000_000}),
                       ("runs/create", {"experiment_id": "0", "run_name": "x" * 1_000_000})):
        response = alice.post(path, body)
        assert response.status_code in (400, 413), (path, response.status_code)
        assert len(response.content) < 1000
    assert time.monotonic() - started < 5
    assert (Experiment.objects.count(), Run.objects.count()) == (experiments, runs)
