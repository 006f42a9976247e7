"""What the run page tests share: an experiment of alice's with a run that logged params,
metric histories, a training dataset, a logged model and model artifacts in storage."""

from types import SimpleNamespace

from registry import services, tracking
from tests import jobs_support as js


def grant(actor, experiment, principal, *privileges):
    services.grants_change(actor=actor, obj=experiment, changes=[{"principal": principal, "add": list(privileges)}])


def tracked_run(user, experiment, *, name="train", params=None, metrics=None, dataset=True, model_files=True):
    """A finished run of `user` in `experiment`; with a logged model and its files when asked."""
    run = tracking.run_create(actor=user, experiment_id=experiment.pk, run_name=name)
    params = {"max_depth": "3", "n_estimators": "100"} if params is None else params
    metrics = {"accuracy": [0.81, 0.9, 0.95], "f1": [0.7]} if metrics is None else metrics
    tracking.run_log_batch(
        actor=user, run_id=run.run_uuid,
        params=[{"key": k, "value": v} for k, v in params.items()],
        metrics=[{"key": k, "value": v, "timestamp": 1_700_000_000_000 + step, "step": step}
                 for k, values in metrics.items() for step, v in enumerate(values)],
        tags=[{"key": "team", "value": "ml"}, {"key": "mlflow.source.name", "value": "train.py"}],
    )
    if dataset:
        tracking.run_log_inputs(actor=user, run_id=run.run_uuid, datasets=[{
            "tags": [{"key": "mlflow.data.context", "value": "training"}],
            "dataset": {"name": "iris_train", "digest": "d1g3st42", "source_type": "delta_table",
                        "source": '{"table_name": "prod.data.iris"}'},
        }])
    logged = None
    if model_files:
        js.write_model_source(f"{tracking.run_artifact_prefix(run)}/model", weights_bytes=2000)
        logged = tracking.logged_model_create(actor=user, experiment_id=experiment.pk, name="model",
                                              model_type="sklearn", source_run_id=run.run_uuid)
        js.write_model_source(tracking.logged_model_prefix(logged), weights_bytes=2000)
        tracking.logged_model_finalize(actor=user, model_id=logged.model_id, status="LOGGED_MODEL_READY")
    tracking.run_update(actor=user, run_id=run.run_uuid, status="FINISHED", end_time=run.start_time + 83_000)
    run.refresh_from_db()
    return SimpleNamespace(run=run, logged=logged)


def experiment_of(world, name="iris-training"):
    """alice's experiment, eve granted EXECUTE on it; one tracked run."""
    exp = tracking.experiment_create(actor=world.alice, name=name)
    grant(world.alice, exp, "eve", "EXECUTE")
    made = tracked_run(world.alice, exp)
    return SimpleNamespace(experiment=exp, run=made.run, logged=made.logged)
