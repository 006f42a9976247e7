"""The tracking pages cost a constant number of queries whatever the number of experiments,
runs, params, metrics (and their histories), datasets and logged models they show."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from registry import services, tracking
from registry.models import Dataset, ModelVersion, RunInput, RunMetric, RunParam
from tests.mlflow_support import artifact_root  # noqa: F401 — fixture
from tests.runs_support import experiment_of, grant, tracked_run


def _queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return [q["sql"] for q in ctx.captured_queries]


def _grow_run(run, n):
    """`n` more params, metrics with 5 values each, and datasets on `run`."""
    RunParam.objects.bulk_create([RunParam(run=run, key=f"p{i:03d}", value=str(i)) for i in range(n)])
    RunMetric.objects.bulk_create([RunMetric(run=run, key=f"m{i:03d}", value=s / 10, timestamp=s, step=s)
                                   for i in range(n) for s in range(5)])
    for i in range(n):
        d = Dataset.objects.create(experiment=run.experiment, name=f"d{i}", digest=f"{i:08x}", source_type="code")
        RunInput.objects.create(run=run, dataset=d, tags=[{"key": "mlflow.data.context", "value": "training"}])


@pytest.mark.parametrize("persona", ["alice", "eve", "admin"])
def test_the_experiments_list_costs_the_same_with_1_or_30_experiments(client, world, artifact_root, persona):  # noqa: F811
    experiment_of(world)
    client.force_login(getattr(world, persona))
    one = _queries(client, reverse("experiments"))
    for i in range(29):
        exp = tracking.experiment_create(actor=world.alice, name=f"exp{i}")
        grant(world.alice, exp, "eve", "EXECUTE")
        tracking.run_create(actor=world.alice, experiment_id=exp.pk)
    many = _queries(client, reverse("experiments"))
    assert len(one) == len(many), (len(one), len(many))
    # session, user, does Default exist, running-jobs count (top bar), tree (catalogs, schemas,
    # models), the experiments with their run counts: 8.
    assert len(many) <= 8, "\n".join(many)


@pytest.mark.parametrize("persona", ["alice", "eve", "admin"])
def test_the_runs_table_costs_the_same_with_1_or_60_runs(client, world, artifact_root, persona):  # noqa: F811
    t = experiment_of(world)
    url = reverse("experiment", args=[t.experiment.pk])
    client.force_login(getattr(world, persona))
    one = _queries(client, url)
    for i in range(59):
        tracked_run(world.alice, t.experiment, name=f"r{i}", params={"a": "1", "b": str(i), f"only{i}": "x"},
                    metrics={"accuracy": [0.1, i / 100], "loss": [1.0]}, dataset=False, model_files=False)
    many = _queries(client, url)
    assert len(one) == len(many), (len(one), len(many))
    # session, user, experiment with capabilities, top bar, tree (3), run count, one page of
    # runs with their users, param keys, metric keys, params of the page, latest metrics of the
    # page: 13.
    assert len(many) <= 13, "\n".join(many)
    assert client.get(url + "?page=2").status_code == 200


@pytest.mark.parametrize("persona", ["alice", "eve", "admin"])
def test_the_run_page_costs_the_same_with_few_or_many_params_metrics_and_datasets(client, world, artifact_root, persona):  # noqa: F811
    t = experiment_of(world)
    url = reverse("run", args=[t.experiment.pk, t.run.run_uuid])
    client.force_login(getattr(world, persona))
    one = _queries(client, url)
    _grow_run(t.run, 40)
    for i in range(5):
        services.version_create(actor=world.alice, model=world.iris, run_id=t.run.run_uuid, status=ModelVersion.READY)
        tracking.logged_model_create(actor=world.alice, experiment_id=t.experiment.pk, name=f"lm{i}",
                                     source_run_id=t.run.run_uuid)
    many = _queries(client, url)
    assert len(one) == len(many), (len(one), len(many))
    # session, user, experiment with capabilities, the run, its params, latest metrics (with
    # history counts), datasets, logged models, tags, versions registered from it; the artifact
    # listing's run check; models one owns and schemas with CREATE MODEL (the Register dialog);
    # top bar, tree (3): 17.
    assert len(many) <= 17, "\n".join(many)
    assert "p039" in client.get(url).content.decode()
