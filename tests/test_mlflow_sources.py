"""`model-versions/create` sources: BAD_INPUTS.md "Version sources", each line a case. A refused
source is a 400 (or a 404 for what the caller may not see) with nothing written: no version, no
job, no audit event."""

import pytest

from registry import services, tracking
from registry.models import AuditEvent, Job, ModelVersion
from tests.mlflow_support import artifact_root, as_user, error  # noqa: F401 — fixture

IRIS = "prod.ml_team.iris"


@pytest.fixture
def runs(world):
    mine = tracking.run_create(actor=world.alice, experiment_id="0")
    theirs = tracking.run_create(actor=world.oscar, experiment_id="0")
    logged = tracking.logged_model_create(actor=world.alice, experiment_id="0", name="model", source_run_id=mine.run_uuid)
    their_logged = tracking.logged_model_create(actor=world.oscar, experiment_id="0", name="model")
    churn_v1 = services.version_create(actor=world.admin, model=world.churn, source="x", status=ModelVersion.READY)
    return {"run": mine.run_uuid, "other_run": theirs.run_uuid, "mid": logged.model_id,
            "other_mid": their_logged.model_id, "churn_v1": churn_v1}


def _state():
    return ModelVersion.objects.count(), Job.objects.count(), AuditEvent.objects.count()


def bad_sources(r):
    run = r["run"]
    return [
        ("file:///etc/", None),
        ("file:///etc/", run),
        ("/tmp", None),
        ("/etc", run),
        ("/etc/passwd", None),
        ("file://./..", None),
        ("http://h/../../", None),
        ("\\..\\..\\Windows", None),
        ("C:\\Users\\x", None),
        ("C:/Users/x", None),
        ("model", None),  # empty scheme: a local path
        ("file:model", None),
        (f"file:///tmp/{run}/artifacts/model", run),
        (f"runs:/{run}/model/../../..", None),  # raw `..` leaving the run
        (f"runs:/{run}/../{r['other_run']}/model", None),
        ("mlflow-artifacts://host:9000/models/../../../", None),
        ("http://host:9000/models/../../../", None),
        ("https://host/api/2.0/mlflow-artifacts/artifacts/x", None),
        ("s3a://b/../../../", None),
        ("s3://bucket/model", None),
        ("ftp://h/../", None),
        (f"runs:/{run}/..%2f..%2fartifacts", None),
        (f"mlflow-artifacts:/0/{run}/artifacts/..%2f..%2f..%2f", None),
        (f"runs:/{run}/artifact%00", None),
        (f"runs:/{run}/artifact\x00", None),
        (f"dbfs:/{run}/artifacts/a%3f/../../..", None),
        (f"runs:/{run}/a%3f/model", None),
        ("http://host/;..%2F..%2Fetc", None),
        (f"runs:/{run};x/model", None),
        ("http:///#/../../etc/", None),
        (f"runs:/{run}/model#frag", None),
        (f"runs:/{run}/model?../..", None),
        (f"runs:/{run}/%252e%252e/%252e%252e/%252e%252e/x", None),  # double-encoded
        (f"runs:/{run}/%" + "25" * 12 + "2e", None),  # encoded beyond 10 rounds
        (f"runs:/{run}/" + "%25" * 12 + "2e", None),  # a stray '%' left after decoding
        (f"runs://host/{run}/model", None),
        ("mlflow-artifacts:/models/../../x", None),
        ("models:/prod.ml_team.iris/../1", None),
        ("models:/prod.ml_team/1", None),
        ("runs:/", None),
        ("x" * 5000, None),
        (f"runs:/{run}/model", r["other_run"]),  # run_id mismatch
        (f"mlflow-artifacts:/0/{run}/artifacts/model", r["other_run"]),
        (f"models:/{r['mid']}", r["other_run"]),
    ]


def test_every_bad_source_is_400_and_writes_nothing(runs):
    alice = as_user("alice")
    before = _state()
    for source, run_id in bad_sources(runs):
        body = {"name": IRIS, "source": source, **({"run_id": run_id} if run_id else {})}
        response = alice.post("model-versions/create", body)
        assert response.status_code == 400, (source, response.content)
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE", source
    assert _state() == before


@pytest.mark.parametrize("source", [
    "mlflow-artifacts:/models///",  # BAD_INPUTS.md: still accepted, as MLflow does
    "mlflow-artifacts:/0/{run}/model",  # beside the run's artifacts/, not in it
    "mlflow-artifacts:/{run}",
])
def test_a_clean_path_outside_any_run_is_accepted_but_fails_at_once(runs, artifact_root, source):
    """MLflow answers 200; we have no files to register from it, so the version is
    FAILED_REGISTRATION with the reason at once: no job, nothing read or written in storage."""
    source = source.format(**runs)
    jobs, files = Job.objects.count(), sorted(artifact_root.rglob("*"))
    response = as_user("alice").post("model-versions/create", {"name": IRIS, "source": source})
    assert response.status_code == 200, response.content
    body = response.json()["model_version"]
    assert body["version"] == "3" and body["status"] == "FAILED_REGISTRATION" and body["source"] == source
    assert "no model files to register" in body["status_message"]
    assert Job.objects.count() == jobs and sorted(artifact_root.rglob("*")) == files
    stored = ModelVersion.objects.get(model__full_name=IRIS, version=3)
    assert stored.status == ModelVersion.FAILED and stored.status_message == body["status_message"]
    # as for any version: the owner's privileges were checked first
    error(as_user("eve").post("model-versions/create", {"name": IRIS, "source": source}), 403, "PERMISSION_DENIED")


@pytest.mark.parametrize("source", ["models:/prod.ml_team.iris/1", "mlflow-artifacts:/models///"])
def test_the_create_answer_is_the_version_as_get_shows_it(runs, artifact_root, source):
    """The answer to `model-versions/create` (read by the new version's id) is what
    `model-versions/get` then shows, tags and description included: a copy job's PENDING
    version, and a version that failed at once."""
    alice = as_user("alice")
    body = {"name": IRIS, "source": source, "description": "first cut", "tags": [{"key": "stage", "value": "dev"}]}
    response = alice.post("model-versions/create", body)
    assert response.status_code == 200, response.content
    made = response.json()["model_version"]
    got = alice.get("model-versions/get", {"name": IRIS, "version": made["version"]}).json()["model_version"]
    assert made == got
    assert (made["description"], made["tags"]) == ("first cut", [{"key": "stage", "value": "dev"}])


def test_a_logged_model_id_must_match_the_source(runs):
    before = _state()
    body = {"name": IRIS, "source": f"runs:/{runs['run']}/model", "model_id": runs["mid"]}
    error(as_user("alice").post("model-versions/create", body), 400, "INVALID_PARAMETER_VALUE")
    assert _state() == before


def test_what_the_caller_may_not_see_is_404(runs):
    alice = as_user("alice")
    before = _state()
    for source in [
        f"runs:/{runs['other_run']}/model",  # another user's run
        f"mlflow-artifacts:/0/{runs['other_run']}/artifacts/model",
        f"models:/{runs['other_mid']}",  # another user's logged model
        f"mlflow-artifacts:/0/models/{runs['other_mid']}/artifacts",
        "models:/m-00000000000000000000000000000000",
        "runs:/0123456789abcdef0123456789abcdef/model",
        "models:/staging.ml_team.churn/1",  # a model alice cannot EXECUTE
        "models:/staging.ml_team.churn@Champion",
        f"mlflow-artifacts:/7/{runs['run']}/artifacts/model",  # wrong experiment
    ]:
        error(alice.post("model-versions/create", {"name": IRIS, "source": source}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert _state() == before


def test_the_model_is_checked_before_the_source(runs):
    before = _state()
    error(as_user("eve").post("model-versions/create", {"name": IRIS, "source": "/etc"}), 403, "PERMISSION_DENIED")
    error(as_user("oscar").post("model-versions/create", {"name": IRIS, "source": "/etc"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert _state() == before


@pytest.mark.parametrize(
    "source,prefix",
    [
        ("runs:/{run}/model", "mlartifacts/0/{run}/artifacts/model"),
        ("runs:/{run}/model/", "mlartifacts/0/{run}/artifacts/model"),
        ("mlflow-artifacts:/0/{run}/artifacts/model/..", "mlartifacts/0/{run}/artifacts"),  # stays inside
        ("runs:/{run}/..../model", "mlartifacts/0/{run}/artifacts/..../model"),  # four dots is a name
        ("models:/{mid}", "mlartifacts/0/models/{mid}/artifacts"),
        ("mlflow-artifacts:/0/models/{mid}/artifacts///", "mlartifacts/0/models/{mid}/artifacts"),
        ("mlflow-artifacts:///0/{run}/artifacts/model", "mlartifacts/0/{run}/artifacts/model"),
    ],
)
def test_accepted_sources_become_a_pending_version_and_a_register_job(runs, source, prefix):
    source, prefix = source.format(**runs), prefix.format(**runs)
    response = as_user("alice").post("model-versions/create", {"name": IRIS, "source": source, "description": "d"})
    assert response.status_code == 200, response.content
    body = response.json()["model_version"]
    assert body["version"] == "3" and body["status"] == "PENDING_REGISTRATION" and body["source"] == source
    assert body["run_id"] == runs["run"] and body["description"] == "d"
    job = Job.objects.get(version__model__full_name=IRIS, version__version=3)
    assert job.kind == Job.REGISTER and job.source_prefix == prefix


def test_run_id_and_model_id_that_match_are_accepted(runs):
    alice = as_user("alice")
    body = {"name": IRIS, "source": f"runs:/{runs['run']}/model", "run_id": runs["run"], "tags": [{"key": "k", "value": "v"}]}
    response = alice.post("model-versions/create", body)
    assert response.status_code == 200, response.content
    assert response.json()["model_version"]["tags"] == [{"key": "k", "value": "v"}]
    body = {"name": IRIS, "source": f"models:/{runs['mid']}", "model_id": runs["mid"]}
    response = alice.post("model-versions/create", body)
    assert response.status_code == 200 and response.json()["model_version"]["model_id"] == runs["mid"]


def test_a_models_name_version_source_is_a_copy(runs, world):
    response = as_user("gina").client  # noqa: F841 — gina owns fraud but cannot see iris
    error(as_user("gina").post("model-versions/create", {"name": "prod.ml_team.fraud", "source": f"models:/{IRIS}/1"}),
          404, "RESOURCE_DOES_NOT_EXIST")
    services.grants_change(actor=world.alice, obj=world.iris, changes=[{"principal": "gina", "add": ["EXECUTE"]}])
    for source in (f"models:/{IRIS}/1", f"models:/{IRIS}@Champion"):
        response = as_user("gina").post("model-versions/create", {"name": "prod.ml_team.fraud", "source": source})
        assert response.status_code == 200, response.content
    copies = Job.objects.filter(kind=Job.COPY).order_by("pk")
    assert [j.source_version.version for j in copies] == [1, 2]
    assert ModelVersion.objects.get(model=world.fraud, version=2).copied_from == world.v1


def test_lineage_follows_the_source_run(runs, world):
    datasets = [{"tags": [{"key": "mlflow.data.context", "value": "training"}],
                 "dataset": {"name": "iris", "digest": "d1", "source_type": "delta", "source": "prod.data.iris"}}]
    tracking.run_log_inputs(actor=world.alice, run_id=runs["run"], datasets=datasets)
    for source in (f"runs:/{runs['run']}/model", f"models:/{runs['mid']}"):
        assert as_user("alice").post("model-versions/create", {"name": IRIS, "source": source}).status_code == 200
    for job in Job.objects.filter(kind=Job.REGISTER):
        assert job.payload["lineage_inputs"] == [
            {"name": "iris", "digest": "d1", "source_type": "delta", "source": "prod.data.iris", "context": "training"}
        ]


def test_a_registration_or_a_copy_is_one_transaction_without_inner_savepoints(runs, world):
    """`model-versions/create` runs version_register's transaction only: the job's and the
    version's blocks inside it add no savepoints (two round trips each on PostgreSQL). Under
    pytest-django the outer block is itself a savepoint of the test's transaction: one."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    connection.features.supports_json_field  # SQLite's one-time probe (in a savepoint of its own)
    for source in (f"models:/{runs['mid']}", f"models:/{IRIS}/1"):
        with CaptureQueriesContext(connection) as queries:
            response = as_user("alice").post("model-versions/create", {"name": IRIS, "source": source})
        assert response.status_code == 200, response.content
        assert sum((q["sql"] or "").startswith("SAVEPOINT") for q in queries.captured_queries) == 1, source
    assert Job.objects.filter(kind__in=[Job.REGISTER, Job.COPY]).count() == 2
