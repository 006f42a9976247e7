"""The tracking pages as each persona sees them (alice owns the experiment, eve holds EXECUTE on
it, oscar is an outsider: 404, admin a superuser), the artifacts tab and downloads, and the
Register model form: the happy paths make a PENDING version and its register job; a target the
user may not write to, or bad input, is an error next to the field and changes nothing."""

from datetime import datetime
from datetime import timezone as dt_timezone

import pytest
from django.urls import reverse

from registry import services, tracking
from registry.models import Job, ModelVersion, RegisteredModel
from tests.jobs_support import broker_down  # noqa: F401 — fixture
from tests.mlflow_support import artifact_root  # noqa: F401 — fixture
from tests.runs_support import experiment_of, tracked_run


@pytest.fixture
def t(world, artifact_root):  # noqa: F811
    return experiment_of(world)


def _get(client, user, url, status=200):
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code, response.content[:300])
    return response.content.decode()


def _run_url(t, *rest):
    return reverse("run", args=[t.experiment.pk, t.run.run_uuid])


def _register_url(t):
    return reverse("run_register", args=[t.experiment.pk, t.run.run_uuid])


def _counts():
    return ModelVersion.objects.count(), Job.objects.count(), RegisteredModel.objects.count()


# --- Experiments list -------------------------------------------------------------------------
def test_it_lists_the_experiments_each_persona_may_see_with_their_run_counts(client, world, t):
    tracked_run(world.eve, tracking.experiment_default(), name="eve-private", model_files=False)
    url = reverse("experiments")
    alice = _get(client, world.alice, url)
    assert "iris-training" in alice and "Default" in alice
    assert 'href="/experiments/%d/"' % t.experiment.pk in alice
    eve = _get(client, world.eve, url)
    assert "iris-training" in eve  # through her EXECUTE grant
    oscar = _get(client, world.oscar, url)
    assert "iris-training" not in oscar and "Default" in oscar
    assert "iris-training" in _get(client, world.admin, url)
    # Run counts are of the runs each may see: eve's Default run is hers alone.
    default = [e for e in _rows(client, world.eve) if e[0] == "Default"][0]
    assert default[1] == 1
    assert [e for e in _rows(client, world.alice) if e[0] == "Default"][0][1] == 0
    assert [e for e in _rows(client, world.admin) if e[0] == "Default"][0][1] == 1


def _rows(client, user):
    from registry import runs

    return [(e.name, e.run_count) for e in runs.experiments_with_counts(user)]


def test_the_nav_links_to_experiments(client, world):
    assert 'href="/experiments/"' in _get(client, world.oscar, "/")


# --- Experiment page --------------------------------------------------------------------------
def test_the_runs_table_shows_status_user_key_params_and_latest_metrics(client, world, t):
    url = reverse("experiment", args=[t.experiment.pk])
    for persona in (world.alice, world.eve, world.admin):
        page = _get(client, persona, url)
        assert "train" in page and "Finished" in page and "alice" in page
        assert "max_depth" in page and "n_estimators" in page  # param columns
        assert "accuracy" in page and "0.95" in page  # latest value, not 0.81 or 0.9
        assert ">0.81<" not in page
        assert reverse("run", args=[t.experiment.pk, t.run.run_uuid]) in page
    _get(client, world.oscar, url, 404)
    _get(client, world.tom, url, 404)
    _get(client, world.alice, reverse("experiment", args=[987654]), 404)


def test_the_runs_table_filters_with_mlflow_grammar_and_says_when_a_filter_is_wrong(client, world, t):
    tracked_run(world.alice, t.experiment, name="deep", params={"max_depth": "9"}, metrics={"accuracy": [0.5]},
                model_files=False, dataset=False)
    url = reverse("experiment", args=[t.experiment.pk])
    page = _get(client, world.alice, url + "?filter=params.max_depth+%3D+%279%27")
    assert ">deep<" in page and ">train<" not in page
    page = _get(client, world.alice, url + "?filter=metrics.accuracy+%3E+0.9")
    assert ">train<" in page and ">deep<" not in page
    page = _get(client, world.alice, url + "?filter=metrics.accuracy+LIKE+%271%27")
    assert 'role="alert"' in page and ">deep<" in page  # the error, and the unfiltered list


def test_the_runs_table_sorts_by_clicked_columns(client, world, t):
    for name, depth, acc in (("shallow", "1", 0.5), ("deep", "9", 0.99)):
        tracked_run(world.alice, t.experiment, name=name, params={"max_depth": depth}, metrics={"accuracy": [acc]},
                    model_files=False, dataset=False)
    url = reverse("experiment", args=[t.experiment.pk])

    def order_of(page):
        names = [n for n in ("train", "shallow", "deep") if f">{n}<" in page]
        return sorted(names, key=lambda n: page.index(f">{n}<"))

    page = _get(client, world.alice, url)
    assert order_of(page) == ["deep", "shallow", "train"]  # newest first
    assert "?order=metrics.%60accuracy%60+DESC#runs" in page  # a metric header sorts best first
    page = _get(client, world.alice, url + "?order=metrics.%60accuracy%60+DESC")
    assert order_of(page) == ["deep", "train", "shallow"]  # 0.99, 0.95, 0.5
    assert 'aria-sort="descending"' in page and "?order=metrics.%60accuracy%60+ASC#runs" in page  # click again: flip
    page = _get(client, world.alice, url + "?order=params.%60max_depth%60+ASC")
    assert order_of(page) == ["shallow", "train", "deep"]  # '1' < '3' < '9'
    page = _get(client, world.alice, url + "?order=attributes.run_name+ASC&filter=metrics.accuracy+%3E+0.6")
    assert order_of(page) == ["deep", "train"]  # sorted by name, shallow filtered out
    page = _get(client, world.alice, url + "?order=colour+DESC")
    assert "Invalid order_by key" in page and ">shallow<" in page


def test_the_runs_table_paginates(client, world, t):
    for i in range(55):
        tracking.run_create(actor=world.alice, experiment_id=t.experiment.pk, run_name=f"r{i:02d}")
    page = _get(client, world.alice, reverse("experiment", args=[t.experiment.pk]) + "?page=2")
    assert "Page 2 of 2" in page


def test_runs_in_the_default_experiment_stay_their_owners(client, world, t):
    default = tracking.experiment_default()
    mine = tracked_run(world.eve, default, name="eve-secret", model_files=False).run
    url = reverse("experiment", args=[default.pk])
    assert "eve-secret" in _get(client, world.eve, url)
    assert "eve-secret" not in _get(client, world.alice, url)
    _get(client, world.alice, reverse("run", args=[default.pk, mine.run_uuid]), 404)
    assert "eve-secret" in _get(client, world.admin, url)


# --- Run page ---------------------------------------------------------------------------------
def test_the_run_page_shows_params_metrics_datasets_logged_models_per_persona(client, world, t):
    url = _run_url(t)
    services.version_create(actor=world.gina, model=world.fraud, run_id=t.run.run_uuid, status=ModelVersion.READY)
    for persona in (world.alice, world.eve, world.admin):
        page = _get(client, persona, url)
        assert "max_depth" in page and "100" in page
        assert "accuracy" in page and "0.95" in page and ">3<" in page  # latest value; 3 values logged
        assert "iris_train" in page and "d1g3st42" in page and "training" in page and "prod.data.iris" in page
        assert t.logged.model_id in page
        assert "Register model" in page and "team" in page and "train.py" in page
        assert ("prod.ml_team.fraud v2" in page) is (persona == world.admin)  # only versions one may see
    started = datetime.fromtimestamp(t.run.start_time / 1000, tz=dt_timezone.utc)  # epoch ms; UTC here
    assert f'<time datetime="{started.isoformat()}">{started:%Y-%m-%d %H:%M:%S}</time>' in page
    _get(client, world.oscar, url, 404)
    # A run is found only under its own experiment.
    other = tracking.experiment_create(actor=world.alice, name="other")
    _get(client, world.alice, reverse("run", args=[other.pk, t.run.run_uuid]), 404)
    _get(client, world.alice, reverse("run", args=[t.experiment.pk, "0" * 32]), 404)
    _get(client, world.alice, reverse("run", args=[t.experiment.pk, "not-a-run"]), 404)


def test_the_artifacts_tab_lists_folders_and_files_and_downloads_them(client, world, t):
    page = _get(client, world.eve, _run_url(t) + "?tab=artifacts")
    assert "model/" in page
    page = _get(client, world.eve, _run_url(t) + "?tab=artifacts&path=model")
    assert "MLmodel" in page and "model.pkl" in page and "metadata/" in page
    download = reverse("run_artifact", args=[t.experiment.pk, t.run.run_uuid, "model/MLmodel"])
    assert download in page
    client.force_login(world.eve)
    response = client.get(download)
    assert response.status_code == 200 and b"flavors" in b"".join(response.streaming_content)
    assert response["Content-Disposition"].startswith("attachment") and response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Type"] == "application/octet-stream"
    client.force_login(world.oscar)
    assert client.get(download).status_code == 404
    client.force_login(world.alice)
    assert client.get(reverse("run_artifact", args=[t.experiment.pk, t.run.run_uuid, "model"])).status_code == 404
    assert client.get(reverse("run_artifact", args=[t.experiment.pk, t.run.run_uuid, "model/%2e%2e/%2e%2e/x"])).status_code == 400
    page = _get(client, world.alice, _run_url(t) + "?tab=artifacts&path=model/../../other")
    assert "Invalid artifact path" in page


# --- Register model ---------------------------------------------------------------------------
def test_the_dialog_offers_the_runs_models_the_users_models_and_schemas(client, world, t):
    page = _get(client, world.alice, _run_url(t) + "?register=1")
    assert f'value="models:/{t.logged.model_id}"' in page
    assert f'value="runs:/{t.run.run_uuid}/model"' in page
    assert 'value="prod.ml_team.iris"' in page and 'value="prod.ml_team.fraud"' not in page  # owned only
    assert 'value="prod.ml_team"' in page  # CREATE MODEL there
    assert "data-auto-open" in page
    page = _get(client, world.eve, _run_url(t))
    assert "You own no model and may create none" in page


def test_register_a_logged_model_into_an_owned_model_starts_the_job(client, world, t):
    client.force_login(world.alice)
    response = client.post(_register_url(t), {"source": f"models:/{t.logged.model_id}", "target": "existing",
                                              "model": "prod.ml_team.iris"})
    assert response.status_code == 302
    assert response["Location"] == reverse("model", args=["prod", "ml_team", "iris"]) + "#model-jobs"
    version = ModelVersion.objects.get(model=world.iris, version=3)
    assert (version.status, version.run_id, version.created_by) == (ModelVersion.PENDING, t.run.run_uuid, world.alice)
    assert version.source == f"models:/{t.logged.model_id}"
    job = Job.objects.get(version=version)
    assert (job.kind, job.state, job.created_by) == (Job.REGISTER, Job.QUEUED, world.alice)
    assert job.source_prefix == tracking.logged_model_prefix(t.logged)
    assert [i["name"] for i in job.payload["lineage_inputs"]] == ["iris_train"]
    page = client.get(response["Location"]).content.decode()
    assert 'id="model-jobs"' in page  # the progress shows on the model page
    run_page = client.get(_run_url(t)).content.decode()
    assert reverse("version", args=["prod", "ml_team", "iris", 3]) in run_page  # and the run lists it
    client.force_login(world.eve)  # eve sees iris (EXECUTE) too; oscar would not see the run at all
    assert "prod.ml_team.iris v3" in client.get(_run_url(t)).content.decode()


def test_register_an_artifact_path_into_a_new_model(client, world, t):
    client.force_login(world.alice)
    response = client.post(_register_url(t), {"source": "path", "path": "model", "target": "new",
                                              "schema": "prod.ml_team", "name": "iris_from_run"})
    assert response.status_code == 302
    model = RegisteredModel.objects.get(full_name="prod.ml_team.iris_from_run")
    assert model.owner_user == world.alice
    version = model.versions.get()
    assert (version.version, version.status, version.source) == (1, ModelVersion.PENDING, f"runs:/{t.run.run_uuid}/model")
    assert Job.objects.get(version=version).source_prefix == f"{tracking.run_artifact_prefix(t.run)}/model"


def test_register_into_a_model_the_user_may_not_write_to_is_refused(client, world, t):
    before = _counts()
    client.force_login(world.eve)  # sees the run (EXECUTE on the experiment) and iris (EXECUTE), owns nothing
    response = client.post(_register_url(t), {"source": f"models:/{t.logged.model_id}", "target": "existing",
                                              "model": "prod.ml_team.iris"})
    assert response.status_code == 403
    assert "requires ownership" in response.content.decode() and "data-auto-open" in response.content.decode()
    response = client.post(_register_url(t), {"source": f"models:/{t.logged.model_id}", "target": "new",
                                              "schema": "prod.ml_team", "name": "eves"})
    assert response.status_code == 403 and "CREATE MODEL" in response.content.decode()
    # A model alice cannot see is not found: the same answer as a name that does not exist.
    client.force_login(world.alice)
    for name in ("prod.ml_team.fraud", "prod.ml_team.nothing", "staging.ml_team.churn"):
        response = client.post(_register_url(t), {"source": "path", "path": "model", "target": "existing", "model": name})
        assert response.status_code == 400 and "Choose one of the models you own" in response.content.decode()
    response = client.post(_register_url(t), {"source": "path", "path": "model", "target": "new",
                                              "schema": "staging.ml_team", "name": "x"})
    assert response.status_code == 400 and "Choose a schema where you may create models" in response.content.decode()
    assert _counts() == before
    # Someone who cannot see the run gets a 404 whatever they post.
    client.force_login(world.oscar)
    assert client.post(_register_url(t), {"source": "path", "path": "model", "target": "existing",
                                          "model": "prod.ml_team.iris"}).status_code == 404
    assert _counts() == before


@pytest.mark.parametrize("data, field, text", [
    ({"source": "path", "path": "../../../etc", "target": "existing", "model": "prod.ml_team.iris"}, "path", "leaves the artifact directory"),
    ({"source": "path", "path": "%2e%2e/%2e%2e/x", "target": "existing", "model": "prod.ml_team.iris"}, "path", "leaves the artifact directory"),
    ({"source": "path", "path": "a\x00b", "target": "existing", "model": "prod.ml_team.iris"}, "path", "Null characters are not allowed"),
    ({"source": "path", "path": "", "target": "existing", "model": "prod.ml_team.iris"}, "path", "Give the path of a model folder"),
    ({"source": "models:/m-" + "0" * 32, "target": "existing", "model": "prod.ml_team.iris"}, "source", "Select a valid choice"),
    ({"source": "runs:/" + "0" * 32 + "/model", "target": "existing", "model": "prod.ml_team.iris"}, "source", "Select a valid choice"),
    ({"source": "path", "path": "model", "target": "existing", "model": ""}, "model", "Choose a model you own"),
    ({"source": "path", "path": "model", "target": "new", "schema": "", "name": "x"}, "schema", "Choose a schema where"),
    ({"source": "path", "path": "model", "target": "new", "schema": "prod.ml_team", "name": ""}, "name", "Name the new model"),
    ({"source": "path", "path": "model", "target": "new", "schema": "prod.ml_team", "name": "bad name"}, "name", "must not contain a space"),
    ({"source": "path", "path": "model", "target": "new", "schema": "prod.ml_team", "name": "iris"}, "name", "already exists"),
    ({"source": "path", "path": "model", "target": "sideways", "model": "prod.ml_team.iris"}, "target", "Select a valid choice"),
])
def test_bad_input_is_an_error_next_to_the_field_and_changes_nothing(client, world, t, data, field, text):
    before = _counts()
    client.force_login(world.alice)
    response = client.post(_register_url(t), data)
    assert response.status_code == 400, response.content[:300]
    page = response.content.decode()
    error = page.split(f'id="register_{field}-error"' if field != "target" else 'class="register-target has-error"', 1)
    assert len(error) == 2, f"no error on {field}"
    assert text in error[1].split("</p>", 1)[0] if field != "target" else text in error[1]
    assert "data-auto-open" in page
    assert _counts() == before


def test_a_path_without_a_model_fails_in_the_job_not_in_the_form(client, world, t):
    """The form checks the path is inside the run; what is there is the job's to check (it
    reads the MLmodel), as for MLflow's model-versions/create."""
    client.force_login(world.alice)
    response = client.post(_register_url(t), {"source": "path", "path": "nothing-here", "target": "existing",
                                              "model": "prod.ml_team.iris"})
    assert response.status_code == 302
    assert ModelVersion.objects.filter(model=world.iris, status=ModelVersion.PENDING).count() == 1


def test_with_the_broker_down_nothing_is_created_not_even_the_new_model(client, world, t, broker_down):
    before = _counts()
    client.force_login(world.alice)
    response = client.post(_register_url(t), {"source": "path", "path": "model", "target": "new",
                                              "schema": "prod.ml_team", "name": "iris_from_run"})
    assert response.status_code == 503 and "Background work is unavailable" in response.content.decode()
    assert _counts() == before
