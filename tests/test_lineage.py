"""Lineage (registry/lineage.py): datasets → run → [copied from] → this version → copies, as each
persona may see it, on the version page's Lineage tab and from the UC API's `…/lineage`.

The world (tests/conftest.py): alice owns prod.ml_team.iris, eve reads it (EXECUTE), tom reads
every model in prod.ml_team, gina (ml-admins) owns prod.ml_team.fraud and cannot see iris,
oscar sees nothing; staging.ml_team.churn is seen by admin only.
"""

import io
import json
import xml.etree.ElementTree as ET

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from registry import jobs, lineage, selectors, services, tracking
from registry.errors import NotFound
from registry.models import Job, ModelVersion, VersionInput
from tests import jobs_support as js
from tests.jobs_support import artifact_dir, artifacts  # noqa: F401 — fixtures
from tests.mlflow_support import as_user
from tests.test_api_uc_support import UC, assert_error

IRIS, FRAUD, CHURN = "prod.ml_team.iris", "prod.ml_team.fraud", "staging.ml_team.churn"
TRAIN = {"name": "iris_train", "digest": "d0e1f2a3", "source_type": "http",
         "source": json.dumps({"url": "https://data.example.com/iris.csv"})}
EVAL = {"name": "iris_eval", "digest": "b4c5d6e7", "source_type": "delta_table",
        "source": json.dumps({"delta_table_name": "prod.data.iris_eval"})}


def _inputs(*pairs):
    return [{"tags": [{"key": "mlflow.data.context", "value": context}], "dataset": dataset} for dataset, context in pairs]


@pytest.fixture
def run(world):
    """alice's run (in the shared Default experiment, so private to her) that logged two datasets."""
    r = tracking.run_create(actor=world.alice, experiment_id="0", run_name="rf-200-trees")
    tracking.run_log_inputs(actor=world.alice, run_id=r.run_uuid, datasets=_inputs((TRAIN, "training"), (EVAL, "eval")))
    return r


@pytest.fixture
def v3(world, run):
    """iris v3, from alice's run."""
    return services.version_create(
        actor=world.alice, model=world.iris, source=f"runs:/{run.run_uuid}/model", run_id=run.run_uuid,
        signature={"inputs": [{"type": "double"}]}, status=ModelVersion.READY,
    )


def _copy(source, target, actor):
    """A copy as job_create_copy records it (the files are not what lineage is about)."""
    return services.version_create(
        actor=actor, model=target, source=f"models:/{source.full_name}", run_id=source.run_id,
        signature=source.signature, status=ModelVersion.READY, copied_from=source,
    )


def _lineage(user, version):
    return lineage.version_lineage(user=user, version=selectors.version_get(user, version.model.full_name, version.version))


# --- Domain -----------------------------------------------------------------------------------
def test_datasets_and_run_of_a_version_registered_from_a_run(world, run, v3):
    found = _lineage(world.alice, v3)
    assert [(d.name, d.context, d.source_type, d.digest) for d in found.datasets] == [
        ("iris_train", "training", "http", "d0e1f2a3"), ("iris_eval", "eval", "delta_table", "b4c5d6e7"),
    ]
    assert found.datasets[0].source_label == "https://data.example.com/iris.csv"
    assert found.datasets[1].source_label == "prod.data.iris_eval"
    code = json.dumps({"tags": {"mlflow.user": "alice", "mlflow.source.name": "train.py", "mlflow.source.type": "LOCAL"}})
    assert lineage.source_label(code) == "train.py" and lineage.source_label("not json") == "not json"
    assert found.run.visible and found.run.name == "rf-200-trees" and found.run.experiment_name == "Default"
    assert found.copied_from is None and found.copies == [] and found.hidden_copies == 0


def test_recorded_inputs_stay_when_the_run_is_gone_and_later_inputs_join_them(world, run, v3):
    VersionInput.objects.create(version=v3, name="iris_train", digest="d0e1f2a3", source_type="http",
                                source=TRAIN["source"], context="training")
    VersionInput.objects.create(version=v3, name="iris_raw", digest="00ff", source_type="local", context="training")
    names = [d.name for d in _lineage(world.alice, v3).datasets]
    assert names == ["iris_train", "iris_raw", "iris_eval"]  # recorded first, the run's others after, no duplicate
    run.delete()
    found = _lineage(world.alice, v3)
    assert [d.name for d in found.datasets] == ["iris_train", "iris_raw"]
    assert found.run.run_id == v3.run_id and not found.run.exists and not found.run.visible


def test_a_copy_knows_its_source_and_the_source_its_copies(world, v3):
    copy = _copy(v3, world.fraud, world.admin)
    assert _lineage(world.tom, copy).copied_from.as_dict() == {
        "visible": True, "full_name": IRIS, "version": 3, "status": "READY"}
    assert [d.name for d in _lineage(world.tom, copy).datasets] == ["iris_train", "iris_eval"]  # through the run
    source = _lineage(world.tom, v3)
    assert [(c.full_name, c.version) for c in source.copies] == [(FRAUD, 2)] and source.hidden_copies == 0


def test_what_a_reader_may_not_see_is_never_named(world, v3):
    _copy(v3, world.fraud, world.admin)
    _copy(v3, world.churn, world.admin)
    # eve reads iris only: alice's run and both copies are hidden; the datasets are the version's.
    found = _lineage(world.eve, v3)
    assert [d.name for d in found.datasets] == ["iris_train", "iris_eval"]
    assert found.run.as_dict() == {"run_id": v3.run_id, "visible": False}
    assert found.copies == [] and found.hidden_copies == 2
    text = json.dumps(found.as_dict())
    assert FRAUD not in text and CHURN not in text and "rf-200-trees" not in text
    # tom sees fraud but not churn.
    found = _lineage(world.tom, v3)
    assert [c.full_name for c in found.copies] == [FRAUD] and found.hidden_copies == 1
    # admin sees everything.
    found = _lineage(world.admin, v3)
    assert [c.full_name for c in found.copies] == [FRAUD, CHURN] and found.hidden_copies == 0 and found.run.visible


def test_a_copy_whose_source_is_hidden_says_so_without_its_name(world, v3):
    copy = _copy(v3, world.fraud, world.admin)
    found = _lineage(world.gina, copy)  # gina owns fraud, cannot see iris
    assert found.copied_from.as_dict() == {"visible": False}
    assert not found.run.visible
    assert IRIS not in json.dumps(found.as_dict())


def test_an_invisible_version_is_not_found(world, v3):
    with pytest.raises(NotFound):
        lineage.version_lineage(user=world.oscar, version=v3)
    with pytest.raises(NotFound):
        lineage.version_lineage(user=world.gina, version=v3)


def test_a_version_without_run_or_copies(world):
    found = _lineage(world.alice, world.v1)  # run "abc" was never logged here
    assert found.datasets == [] and found.run.run_id == "abc" and not found.run.exists
    assert found.copied_from is None and found.copies == []


def _count(fn):
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx.captured_queries)


def test_queries_are_constant_whatever_the_number_of_copies_and_datasets(world, run, v3):
    copy = _copy(v3, world.fraud, world.admin)  # lineage of the copy: copied-from, run, datasets, copies
    first = _copy(copy, world.churn, world.admin)
    version = selectors.version_get(world.tom, FRAUD, copy.version)
    one = _count(lambda: lineage.version_lineage(user=world.tom, version=version))
    for i in range(19):
        _copy(copy, world.fraud if i % 2 else world.churn, world.admin)
    tracking.run_log_inputs(actor=world.alice, run_id=run.run_uuid, datasets=_inputs(
        *[({"name": f"extra_{i}", "digest": f"{i:04d}"}, "training") for i in range(10)]))
    twenty = _count(lambda: lineage.version_lineage(user=world.tom, version=version))
    found = lineage.version_lineage(user=world.tom, version=version)
    assert len(found.copies) == 9 and found.hidden_copies == 11 and len(found.datasets) == 12
    # lineage_inputs, the run's inputs, the run (+ visibility), copied-from (visibility), visible copies, all copies.
    assert one == twenty == 6
    assert first.copied_from_id == copy.pk


# --- Recording: registration paths ------------------------------------------------------------
def _finish_latest_job():
    job = Job.objects.order_by("-pk").first()
    jobs.job_run(job.pk)
    job.refresh_from_db()
    assert job.state == Job.SUCCEEDED, job.message
    return job.version


def test_mlflow_create_from_a_run_or_logged_model_records_the_runs_datasets(world, run, artifacts):
    js.require_redis()
    logged = tracking.logged_model_create(actor=world.alice, experiment_id="0", name="model", source_run_id=run.run_uuid)
    js.write_model_source(f"{tracking.run_artifact_prefix(run)}/model", weights_bytes=100)
    js.write_model_source(tracking.logged_model_prefix(logged), weights_bytes=100)
    alice = as_user("alice")
    for body in ({"name": IRIS, "source": f"runs:/{run.run_uuid}/model", "run_id": run.run_uuid},
                 {"name": IRIS, "source": f"models:/{logged.model_id}", "run_id": run.run_uuid,
                  "model_id": logged.model_id}):
        response = alice.post("model-versions/create", body)
        assert response.status_code == 200, response.content
        version = _finish_latest_job()
        recorded = list(version.lineage_inputs.values_list("name", "context"))
        assert recorded == [("iris_train", "training"), ("iris_eval", "eval")]
        found = _lineage(world.alice, version)
        assert found.run.run_id == run.run_uuid and [d.name for d in found.datasets] == ["iris_train", "iris_eval"]

    # A copy (`models:/<name>/<version>`) records where it came from, and carries the datasets.
    response = as_user("gina").post("model-versions/create", {"name": FRAUD, "source": f"models:/{IRIS}/3"})
    assert response.status_code == 404  # gina cannot see iris
    services.grants_change(actor=world.alice, obj=world.iris, changes=[{"principal": "gina", "add": ["EXECUTE"]}])
    response = as_user("gina").post("model-versions/create", {"name": FRAUD, "source": f"models:/{IRIS}/3"})
    assert response.status_code == 200, response.content
    copy = _finish_latest_job()
    assert copy.copied_from.full_name == f"{IRIS}/3"
    assert list(copy.lineage_inputs.values_list("name", flat=True)) == ["iris_train", "iris_eval"]
    found = _lineage(world.gina, copy)
    assert found.copied_from.full_name == IRIS and found.copied_from.version == 3
    assert [(c.full_name, c.version) for c in _lineage(world.admin, copy.copied_from).copies] == [(FRAUD, copy.version)]
    assert _lineage(world.alice, copy.copied_from).hidden_copies == 1  # alice cannot see fraud


# --- The page ---------------------------------------------------------------------------------
def _page(client, user, version):
    client.force_login(user)
    c, s, m = version.model.full_name.split(".")
    return client.get(reverse("version", args=[c, s, m, version.version]) + "?tab=lineage")


def _svg(body):
    """The graph's <svg> element, parsed as XML: the markup must be well formed."""
    start = body.index("<svg")
    return ET.fromstring(body[start: body.index("</svg>", start) + len("</svg>")])


SVG_NS = "{http://www.w3.org/2000/svg}"


def test_the_lineage_tab_draws_datasets_run_version_and_copies(client, world, run, v3):
    copy = _copy(v3, world.fraud, world.admin)
    response = _page(client, world.tom, v3)
    assert response.status_code == 200
    body = response.content.decode()
    svg = _svg(body)
    nodes = {}
    for n in svg.iter():
        if (n.get("data-testid") or "").startswith("lineage-node-"):
            nodes.setdefault(n.get("data-testid"), n)  # the first of each kind
    assert set(nodes) == {"lineage-node-dataset", "lineage-node-run", "lineage-node-version", "lineage-node-copy"}
    labels = [t.text for t in svg.iter(f"{SVG_NS}text") if "lineage-label" in t.get("class")]
    assert labels[:2] == ["iris_train", "iris_eval"] and "iris v3" in labels and "fraud v2" in labels
    assert nodes["lineage-node-copy"].get("href") == reverse("version", args=["prod", "ml_team", "fraud", copy.version])
    assert nodes["lineage-node-dataset"].get("href") == "#lineage-dataset-1"
    assert 'id="lineage-dataset-1"' in body and "https://data.example.com/iris.csv" in body
    assert svg.get("role") == "group" and svg.find(f"{SVG_NS}title").text.startswith(f"Lineage of {IRIS} version 3")
    assert "<script" not in body.split('id="lineage-graph"')[1].split("</svg>")[0]
    assert 'data-testid="tab-lineage" class="tab is-active" aria-current="page"' in body  # for browser tests


def test_the_run_node_is_plain_for_who_may_not_see_the_run(client, world, run, v3):
    body = _page(client, world.eve, v3).content.decode()
    assert "rf-200-trees" not in body and "a run you cannot see" in body
    assert v3.run_id in body  # the id is part of the version (as in MLflow's API)


def test_the_page_never_names_a_hidden_source_or_copy(client, world, v3):
    copy = _copy(v3, world.fraud, world.admin)
    _copy(copy, world.churn, world.admin)
    body = _page(client, world.gina, copy).content.decode()
    graph_and_tables = body.split('data-testid="lineage"')[1]
    assert "a version you cannot see" in graph_and_tables and "1 copy in models you cannot see" in graph_and_tables
    assert IRIS not in graph_and_tables and "churn" not in graph_and_tables


def test_the_page_is_404_for_who_may_not_see_the_version(client, world, v3):
    assert _page(client, world.oscar, v3).status_code == 404
    assert _page(client, world.gina, v3).status_code == 404


def test_the_page_queries_do_not_grow_with_copies(client, world, run, v3):
    _copy(v3, world.fraud, world.admin)
    client.force_login(world.tom)
    url = reverse("version", args=["prod", "ml_team", "iris", 3]) + "?tab=lineage"
    client.get(url)  # warm: the session's first use
    one = _count(lambda: client.get(url))
    for _ in range(19):
        _copy(v3, world.fraud, world.admin)
    twenty = _count(lambda: client.get(url))
    assert one == twenty


@pytest.mark.parametrize("payload", [
    "<script>alert(1)</script>",
    '"><svg onload=alert(1)>',
    "</text></svg><img src=x onerror=alert(1)>",
    "]]><!--&amp;",
])
def test_dataset_names_and_sources_are_escaped_in_the_graph_and_the_table(client, world, v3, run, payload):
    tracking.run_log_inputs(actor=world.alice, run_id=run.run_uuid, datasets=_inputs(
        ({"name": payload, "digest": "x1", "source_type": payload, "source": json.dumps({"uri": payload})}, payload)))
    body = _page(client, world.alice, v3).content.decode()
    assert payload not in body
    svg = _svg(body)  # still well-formed: the payload did not close or open any element
    texts = [t.text for t in svg.iter(f"{SVG_NS}text")]
    assert any(payload[:10] in (t or "") for t in texts)
    assert not [e for e in svg.iter() if e.tag in ("script", f"{SVG_NS}script", "img", f"{SVG_NS}img")]
    assert not [e for e in svg.iter() if any(a.startswith("on") for a in e.attrib)]


def test_many_datasets_fold_into_a_more_node(client, world, v3, run):
    tracking.run_log_inputs(actor=world.alice, run_id=run.run_uuid, datasets=_inputs(
        *[({"name": f"part_{i:02d}", "digest": f"{i:04d}"}, "training") for i in range(12)]))
    body = _page(client, world.alice, v3).content.decode()
    svg = _svg(body)
    drawn = [n for n in svg.iter() if n.get("data-testid") in ("lineage-node-dataset", "lineage-node-more")]
    assert len(drawn) == 6 and drawn[-1].get("data-testid") == "lineage-node-more"
    assert body.count('id="lineage-dataset-') == 14  # the table lists them all


# --- The API ----------------------------------------------------------------------------------
def _api(user, full_name, version):
    return UC(user).get(f"models/{full_name}/versions/{version}/lineage")


@pytest.mark.parametrize("persona, status", [
    ("admin", 200), ("alice", 200), ("eve", 200), ("tom", 200), ("gina", 404), ("cody", 404), ("uma", 404),
    ("oscar", 404),
])
def test_the_api_answers_each_persona(world, v3, persona, status):
    response = _api(getattr(world, persona), IRIS, 3)
    if status == 404:
        assert_error(response, 404, "NOT_FOUND")
    else:
        assert response.status_code == 200, response.content
        assert response.json()["model_version"] == {"visible": True, "full_name": IRIS, "version": 3, "status": "READY"}


def test_the_api_answers_the_same_lineage_as_the_page(world, run, v3):
    _copy(v3, world.fraud, world.admin)
    _copy(v3, world.churn, world.admin)
    body = _api(world.tom, IRIS, 3).json()
    assert body == {
        "model_version": {"visible": True, "full_name": IRIS, "version": 3, "status": "READY"},
        "datasets": [
            {"name": "iris_train", "digest": "d0e1f2a3", "source_type": "http", "source": TRAIN["source"],
             "context": "training"},
            {"name": "iris_eval", "digest": "b4c5d6e7", "source_type": "delta_table", "source": EVAL["source"],
             "context": "eval"},
        ],
        "run": {"run_id": run.run_uuid, "visible": False},
        "copied_from": None,
        "copies": [{"visible": True, "full_name": FRAUD, "version": 2, "status": "READY"}],
        "hidden_copies": 1,
    }
    run_seen_by_alice = _api(world.alice, IRIS, 3).json()["run"]
    assert run_seen_by_alice == {"run_id": run.run_uuid, "visible": True, "run_name": "rf-200-trees", "status": "RUNNING",
                                 "experiment_id": "0", "experiment_name": "Default"}


def test_the_api_needs_credentials_and_valid_names(world, v3, client):
    assert client.get(f"/api/2.1/unity-catalog/models/{IRIS}/versions/3/lineage").status_code == 401
    client.force_login(world.alice)  # the session cookie is not an API credential
    assert client.get(f"/api/2.1/unity-catalog/models/{IRIS}/versions/3/lineage").status_code == 401
    assert_error(_api(world.alice, "prod.iris", 3), 400, "INVALID_ARGUMENT", "three levels")
    assert_error(_api(world.alice, IRIS, 99), 404, "NOT_FOUND")


def test_the_api_is_in_the_openapi_document(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/2.1/unity-catalog/models/{full_name}/versions/{version}/lineage" in schema
    assert "uc_versions_lineage" in schema


# --- Demo content -----------------------------------------------------------------------------
def test_the_demo_has_lineage_that_differs_by_user(db):
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())  # idempotent
    alice, bob = User.objects.get(username="alice"), User.objects.get(username="bob")
    prod_v3 = ModelVersion.objects.get(model__full_name="prod.ml_team.iris_model", version=3)
    found = _lineage(alice, prod_v3)
    assert [d.name for d in found.datasets] == ["iris_train", "iris_eval"] and found.run.name == "rf-200-trees"
    assert [(c.full_name, c.version) for c in found.copies] == [("staging.ml_team.iris_model", 1)]
    found = _lineage(bob, prod_v3)  # a reader of prod iris: the datasets, not alice's run, not staging
    assert [d.name for d in found.datasets] == ["iris_train", "iris_eval"]
    assert not found.run.visible and found.copies == [] and found.hidden_copies == 1
