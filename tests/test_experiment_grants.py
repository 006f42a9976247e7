"""Experiments are securables: their owner (a user or a group) and grants decide who sees an
experiment, its runs, logged models and artifacts (EXECUTE), who logs runs into it (MODIFY), and
who changes it or its grants (the owner). The pages, the MLflow API and the artifact proxy all
answer by the same rule in permissions.py.

Personas here: alice owns the experiment; eve holds EXECUTE; tom holds MODIFY; the group
ml-admins (gina) holds ALL PRIVILEGES; oscar nothing; admin is a superuser."""

import pytest
from django.urls import reverse

from registry import permissions, services, tracking
from registry.errors import Forbidden, InvalidInput, NotFound
from registry.models import Experiment, ExperimentUserGrant, RunParam
from tests.mlflow_support import artifact_root, as_user, error  # noqa: F401 — fixture
from tests.runs_support import grant, tracked_run
from tests.test_domain_permissions import HIDDEN, NO, OK
from tests.test_domain_permissions import outcome as _outcome

ACTIONS = ["experiment.read", "experiment.log_into", "experiment.edit", "experiment.manage"]
EXPECTED = {
    "alice": [OK, OK, OK, OK],
    "eve": [OK, NO, NO, NO],
    "tom": [OK, OK, NO, NO],
    "gina": [OK, OK, NO, NO],
    "oscar": [HIDDEN, HIDDEN, HIDDEN, HIDDEN],
    "admin": [OK, OK, OK, OK],
}


@pytest.fixture
def exp(world, artifact_root):  # noqa: F811
    experiment = tracking.experiment_create(actor=world.alice, name="churn-training")
    grant(world.alice, experiment, "eve", "EXECUTE")
    grant(world.alice, experiment, "tom", "MODIFY")
    grant(world.alice, experiment, "group:ml-admins", "ALL PRIVILEGES")
    experiment.run = tracked_run(world.alice, experiment).run
    return experiment


def test_every_experiment_action_is_in_the_table():
    assert sorted(a for a in permissions.ACTIONS if a.startswith("experiment.")) == sorted(ACTIONS)


def test_it_decides_as_the_table_says(world, exp):
    actual = {p: [_outcome(getattr(world, p), a, exp) for a in ACTIONS] for p in EXPECTED}
    assert actual == EXPECTED
    # The list filter agrees with the one-object decision.
    for persona, outcomes in EXPECTED.items():
        listed = tracking.experiments(getattr(world, persona)).filter(pk=exp.pk).exists()
        assert listed is (outcomes[0] == OK), persona


def test_runs_and_logged_models_follow_their_experiment(world, exp):
    tom_run = tracked_run(world.tom, exp, name="tom-run", model_files=False).run  # MODIFY: may log
    for persona, sees in {"alice": True, "eve": True, "tom": True, "gina": True, "oscar": False, "admin": True}.items():
        user = getattr(world, persona)
        assert tracking.runs(user).filter(pk=exp.run.pk).exists() is sees, persona
        assert tracking.logged_models(user).filter(experiment=exp).exists() is sees, persona
    # Seeing is not changing: a run is changed by its creator or the experiment's owner.
    with pytest.raises(Forbidden, match="creator or the owner of experiment churn-training"):
        tracking.run_log_batch(actor=world.eve, run_id=exp.run.run_uuid, params=[{"key": "x", "value": "1"}])
    with pytest.raises(Forbidden):
        tracking.run_log_batch(actor=world.tom, run_id=exp.run.run_uuid, params=[{"key": "x", "value": "1"}])
    tracking.run_log_batch(actor=world.tom, run_id=tom_run.run_uuid, params=[{"key": "x", "value": "1"}])
    tracking.run_log_batch(actor=world.alice, run_id=tom_run.run_uuid, params=[{"key": "y", "value": "2"}])
    with pytest.raises(Forbidden, match="requires the MODIFY privilege"):
        tracking.run_create(actor=world.eve, experiment_id=exp.pk)
    with pytest.raises(NotFound):
        tracking.run_create(actor=world.oscar, experiment_id=exp.pk)


def test_a_group_owner_shares_ownership_and_grants_take_effect_at_once(world, exp):
    services.owner_transfer(actor=world.alice, obj=exp, principal="ml-admins")
    exp.refresh_from_db()
    assert (exp.owner_user, exp.owner_group, exp.owner_name) == (None, world.ml_admins, "ml-admins")
    assert _outcome(world.gina, "experiment.manage", exp) == OK
    assert _outcome(world.alice, "experiment.read", exp) == HIDDEN  # she kept no grant
    assert tracking.runs(world.gina).filter(pk=exp.run.pk).exists()
    assert tracking.runs(world.alice).filter(pk=exp.run.pk).exists()  # still her own run
    services.grants_change(actor=world.gina, obj=exp, changes=[{"principal": "eve", "remove": ["EXECUTE"]}])
    assert _outcome(world.eve, "experiment.read", exp) == HIDDEN
    assert not tracking.runs(world.eve).filter(pk=exp.run.pk).exists()


def test_grants_on_experiments_are_checked(world, exp):
    with pytest.raises(Forbidden, match="Managing permissions on experiment churn-training requires ownership"):
        services.grants_change(actor=world.eve, obj=exp, changes=[{"principal": "oscar", "add": ["EXECUTE"]}])
    with pytest.raises(NotFound):
        services.grants_change(actor=world.oscar, obj=exp, changes=[{"principal": "oscar", "add": ["EXECUTE"]}])
    for bad in ("USE CATALOG", "APPLY TAG", "CREATE MODEL", "OWN"):
        with pytest.raises(InvalidInput, match="cannot be granted on a experiment"):
            services.grants_change(actor=world.alice, obj=exp, changes=[{"principal": "oscar", "add": [bad]}])
    services.grants_change(actor=world.alice, obj=exp, changes=[{"principal": "oscar", "add": ["execute"]}])
    assert _outcome(world.oscar, "experiment.read", exp) == OK
    rows = {(g["principal"], tuple(g["privileges"])) for g in services.grants_on(exp)}
    assert ("oscar", ("EXECUTE",)) in rows and ("ml-admins", ("ALL PRIVILEGES",)) in rows


def test_only_a_superuser_manages_the_shared_default_experiment(world, artifact_root):  # noqa: F811
    default = tracking.experiment_default()
    with pytest.raises(Forbidden):
        services.grants_change(actor=world.alice, obj=default, changes=[{"principal": "eve", "add": ["EXECUTE"]}])
    mine = tracked_run(world.alice, default, model_files=False).run
    assert not tracking.runs(world.eve).filter(pk=mine.pk).exists()
    services.grants_change(actor=world.admin, obj=default, changes=[{"principal": "eve", "add": ["EXECUTE"]}])
    assert tracking.runs(world.eve).filter(pk=mine.pk).exists()  # a grant on Default shows its runs


# --- The MLflow API answers by the same rule ---------------------------------------------------
def test_the_mlflow_api_honours_experiment_grants(world, exp):
    run_id, exp_id = exp.run.run_uuid, str(exp.pk)
    eve, tom, oscar = as_user("eve"), as_user("tom"), as_user("oscar")
    assert eve.get("experiments/get", {"experiment_id": exp_id}).json()["experiment"]["name"] == "churn-training"
    assert "churn-training" in {e["name"] for e in eve.post("experiments/search", {}).json()["experiments"]}
    assert [r["info"]["run_id"] for r in eve.post("runs/search", {"experiment_ids": [exp_id]}).json()["runs"]] == [run_id]
    assert eve.get("runs/get", {"run_id": run_id}).json()["run"]["data"]["params"]
    assert eve.get("metrics/get-history", {"run_id": run_id, "metric_key": "accuracy"}).status_code == 200
    artifact = f"/api/2.0/mlflow-artifacts/artifacts/{exp_id}/{run_id}/artifacts/model/MLmodel"
    assert eve.get(artifact).status_code == 200
    # EXECUTE is not MODIFY: no new runs, no changes, no uploads.
    error(eve.post("runs/create", {"experiment_id": exp_id}), 403, "PERMISSION_DENIED")
    error(eve.post("runs/log-parameter", {"run_id": run_id, "key": "x", "value": "1"}), 403, "PERMISSION_DENIED")
    error(eve.put_bytes(artifact.replace("MLmodel", "evil.txt"), b"x"), 403, "PERMISSION_DENIED")
    error(eve.post("experiments/set-experiment-tag", {"experiment_id": exp_id, "key": "k", "value": "v"}), 403,
          "PERMISSION_DENIED")
    # MODIFY: tom logs runs of his own, which the owner and the readers see.
    tom_run = tom.post("runs/create", {"experiment_id": exp_id, "run_name": "tom"}).json()["run"]["info"]["run_id"]
    assert tom.post("runs/log-parameter", {"run_id": tom_run, "key": "lr", "value": "0.1"}).status_code == 200
    error(tom.post("runs/log-parameter", {"run_id": run_id, "key": "x", "value": "1"}), 403, "PERMISSION_DENIED")
    assert as_user("alice").post("runs/log-parameter", {"run_id": tom_run, "key": "depth", "value": "2"}).status_code == 200
    assert {r["info"]["run_id"] for r in eve.post("runs/search", {"experiment_ids": [exp_id]}).json()["runs"]} == {run_id, tom_run}
    # Outsiders: not found, whatever they try.
    error(oscar.get("experiments/get", {"experiment_id": exp_id}), 404, "RESOURCE_DOES_NOT_EXIST")
    error(oscar.get("runs/get", {"run_id": run_id}), 404, "RESOURCE_DOES_NOT_EXIST")
    error(oscar.get(artifact), 404, "RESOURCE_DOES_NOT_EXIST")
    assert oscar.post("runs/search", {"experiment_ids": [exp_id]}).json() == {"runs": []}
    assert not RunParam.objects.filter(key="x").exists()


def test_execute_on_an_experiment_is_enough_to_register_from_its_runs(world, exp):
    """eve may register alice's run into a model eve owns; oscar cannot even name the run."""
    services.grants_change(actor=world.admin, obj=world.ml_team, changes=[{"principal": "eve", "add": ["CREATE MODEL"]}])
    services.model_create(actor=world.eve, schema=world.ml_team, name="eves_model")
    body = {"name": "prod.ml_team.eves_model", "source": f"runs:/{exp.run.run_uuid}/model", "run_id": exp.run.run_uuid}
    version = as_user("eve").post("model-versions/create", body).json()["model_version"]
    assert (version["version"], version["status"]) == ("1", "PENDING_REGISTRATION")
    services.grants_change(actor=world.admin, obj=world.ml_team, changes=[{"principal": "oscar", "add": ["USE SCHEMA", "CREATE MODEL"]}])
    services.grants_change(actor=world.admin, obj=world.prod, changes=[{"principal": "oscar", "add": ["USE CATALOG"]}])
    services.model_create(actor=world.oscar, schema=world.ml_team, name="oscars_model")
    error(as_user("oscar").post("model-versions/create", {**body, "name": "prod.ml_team.oscars_model"}), 404,
          "RESOURCE_DOES_NOT_EXIST")


# --- Pages: the Permissions tab of an experiment ------------------------------------------------
def test_the_permissions_tab_grants_revokes_and_transfers(client, world, exp):
    url = reverse("experiment", args=[exp.pk])
    client.force_login(world.alice)
    page = client.get(url + "?tab=permissions").content.decode()
    assert "Grant a privilege" in page and "MODIFY" in page and "ml-admins" in page
    grant_url = reverse("experiment_grant", args=[exp.pk])
    response = client.post(grant_url, {"principal": "oscar", "privilege": "EXECUTE"})
    assert response.status_code == 302 and response["Location"] == url + "?tab=permissions#grants"
    client.force_login(world.oscar)
    assert client.get(url).status_code == 200
    client.force_login(world.alice)
    response = client.post(grant_url, {"principal": "nobody-at-all", "privilege": "EXECUTE"})
    assert response.status_code == 400 and "No user or group is named" in response.content.decode()
    response = client.post(grant_url, {"principal": "oscar", "privilege": "USE CATALOG"})
    assert response.status_code == 400  # not a privilege of experiments: a form error
    response = client.post(reverse("experiment_revoke", args=[exp.pk]), {"principal": "user:oscar", "privilege": "EXECUTE"})
    assert response.status_code == 302
    client.force_login(world.oscar)
    assert client.get(url).status_code == 404
    # A grantee sees the tab but no forms, and may not post them.
    client.force_login(world.eve)
    page = client.get(url + "?tab=permissions").content.decode()
    assert "eve" in page and "Grant a privilege" not in page
    assert client.post(grant_url, {"principal": "oscar", "privilege": "EXECUTE"}).status_code == 403
    assert client.post(reverse("experiment_owner", args=[exp.pk]), {"principal": "eve"}).status_code == 403
    assert not ExperimentUserGrant.objects.filter(user=world.oscar).exists()
    client.force_login(world.oscar)
    assert client.post(grant_url, {"principal": "oscar", "privilege": "EXECUTE"}).status_code == 404
    # Transfer to a group: alice keeps nothing and lands on the experiments list.
    client.force_login(world.alice)
    response = client.post(reverse("experiment_owner", args=[exp.pk]), {"principal": "ml-admins"})
    assert response.status_code == 302 and response["Location"] == reverse("experiments")
    assert Experiment.objects.get(pk=exp.pk).owner_group == world.ml_admins
    client.force_login(world.gina)
    assert "Grant a privilege" in client.get(url + "?tab=permissions").content.decode()


# --- The Unity Catalog permissions API takes experiments too (by id) ----------------------------
def test_the_permissions_api_grants_on_experiments(world, exp):
    url = f"/api/2.1/unity-catalog/permissions/experiment/{exp.pk}"
    alice, eve, oscar = as_user("alice"), as_user("eve"), as_user("oscar")
    body = alice.get(url).json()
    assert {"principal": "eve", "principal_type": "user", "privileges": ["EXECUTE"]} in body["privilege_assignments"]
    assert body["inherited_privilege_assignments"] == []
    response = alice.patch(url, {"changes": [{"principal": "oscar", "add": ["MODIFY"]}]})
    assert response.status_code == 200, response.content
    assert oscar.post("/api/2.0/mlflow/runs/create", {"experiment_id": str(exp.pk)}).status_code == 200
    assert alice.patch(url, {"changes": [{"principal": "oscar", "add": ["USE_SCHEMA"]}]}).status_code == 400
    assert eve.get(url).status_code == 200  # a grantee sees the grants
    assert eve.patch(url, {"changes": [{"principal": "eve", "add": ["MODIFY"]}]}).status_code == 403
    alice.patch(url, {"changes": [{"principal": "oscar", "remove": ["MODIFY"]}]})
    for missing in (url, url.replace(str(exp.pk), "424242"), url.replace(str(exp.pk), "abc")):
        assert oscar.get(missing).status_code == 404
