"""MLflow tracking, as services and reads: experiments, runs, params, metrics, datasets, logged
models. Keyword-only like `services.py`; who may see or change what is `permissions.py`'s
tracking section (owners and grants on experiments; the Default experiment is shared, its runs
private).

Invisible objects raise NotFound, visible but not changeable ones Forbidden. Artifact locations are
`mlflow-artifacts:/…` URIs under our proxy; their files live in the artifact storage under
`mlartifacts/` (see `registry.storage`).
"""

import math
import re
import time
import uuid

from django.db import IntegrityError, transaction
from django.db.models import Case, Exists, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce

from . import names, search
from .errors import AlreadyExists, InvalidInput, NotFound
from .models import (
    Dataset,
    Experiment,
    ExperimentTag,
    LoggedModel,
    LoggedModelParam,
    LoggedModelTag,
    Run,
    RunInput,
    RunMetric,
    RunOutput,
    RunParam,
    RunTag,
)
from .permissions import compiled_for, tracking_require_write, tracking_visible

MAX_EXPERIMENT_NAME = 500
MAX_PARAM_VALUE = 6000
MAX_BATCH = 1000
RUN_STATUSES = {"RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"}
LOGGED_MODEL_STATUSES = {LoggedModel.PENDING, LoggedModel.READY, LoggedModel.FAILED}
_RUN_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_MODEL_ID_RE = re.compile(r"^m-[0-9a-f]{32}$")


def now_ms():
    return int(time.time() * 1000)


def _int(value, what, default=None):
    if value in (None, ""):
        if default is None:
            raise InvalidInput(f"Missing value for required parameter '{what}'.")
        return default
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"Parameter '{what}' must be an integer, got {str(value)[:40]!r}.") from None


def _text(value, what, limit=MAX_EXPERIMENT_NAME, required=True):
    if value is None or value == "":
        if required:
            raise InvalidInput(f"Missing value for required parameter '{what}'.")
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"Parameter '{what}' must be a string.")
    if len(value) > limit:
        raise InvalidInput(f"Parameter '{what}' must be at most {limit} characters, got {len(value)}.")
    if "\x00" in value:
        raise InvalidInput(f"Parameter '{what}' must not contain NUL characters.")
    return value


def _dicts(items, what):
    """A list of JSON objects, or a 400."""
    if items in (None, ""):
        return []
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, dict) for i in items):
        raise InvalidInput(f"'{what}' must be a list of objects.")
    return list(items)


def _tag(key, value):
    return names.validate_tag(key, "" if value is None else value)


# --- Experiments ------------------------------------------------------------------------------
def experiment_default():
    exp = Experiment.objects.filter(pk=Experiment.DEFAULT_ID).first()
    if exp is None:
        try:
            with transaction.atomic():
                t = now_ms()
                exp = Experiment.objects.create(
                    pk=Experiment.DEFAULT_ID, name="Default", owner_user=None, creation_time=t, last_update_time=t
                )
        except IntegrityError:
            exp = Experiment.objects.get(pk=Experiment.DEFAULT_ID)
    return exp


def experiments(user):
    experiment_default()
    return tracking_visible(user, Experiment.objects.all(), "experiment")


def experiment_get(user, experiment_id):
    number = _int(experiment_id, "experiment_id")
    exp = experiments(user).filter(pk=number).first()
    if exp is None:
        raise NotFound(f"No Experiment with id={experiment_id} exists")
    return exp


def experiment_get_by_name(user, name):
    name = _text(name, "experiment_name")
    exp = experiments(user).filter(name=name).first()
    if exp is None:
        raise NotFound(f"Could not find experiment with name '{name}'")
    return exp


def experiment_create(*, actor, name, tags=()):
    name = _text(name, "name")
    tags = dict(_tag(t.get("key"), t.get("value")) for t in _dicts(tags, "tags"))
    t = now_ms()
    experiment_default()
    try:
        with transaction.atomic():
            exp = Experiment.objects.create(name=name, owner_user=actor, creation_time=t, last_update_time=t)
            ExperimentTag.objects.bulk_create([ExperimentTag(experiment=exp, key=k, value=v) for k, v in tags.items()])
    except IntegrityError:
        raise AlreadyExists(f"Experiment(name={name}) already exists.") from None
    return exp


def experiment_set_tag(*, actor, experiment, key, value):
    tracking_require_write(actor, experiment, "experiment")
    key, value = _tag(key, value)
    ExperimentTag.objects.update_or_create(experiment=experiment, key=key, defaults={"value": value})


def artifact_location(experiment):
    return f"mlflow-artifacts:/{experiment.pk}"


# --- Runs -------------------------------------------------------------------------------------
def runs(user):
    return tracking_visible(user, Run.objects.select_related("experiment", "owner"), "run")


def run_get(user, run_id):
    if not isinstance(run_id, str) or not _RUN_ID_RE.match(run_id):
        raise NotFound(f"Run '{str(run_id)[:64]}' not found")
    run = runs(user).filter(run_uuid=run_id).first()
    if run is None:
        raise NotFound(f"Run '{run_id}' not found")
    return run


def run_artifact_prefix(run):
    """Storage-relative directory of a run's artifacts."""
    return f"mlartifacts/{run.experiment_id}/{run.run_uuid}/artifacts"


def run_artifact_uri(run):
    return f"mlflow-artifacts:/{run.experiment_id}/{run.run_uuid}/artifacts"


def run_create(*, actor, experiment_id, start_time=None, run_name="", tags=()):
    exp = experiment_get(actor, experiment_id if experiment_id not in (None, "") else Experiment.DEFAULT_ID)
    tracking_require_write(actor, exp, "experiment.log_into")
    if exp.lifecycle_stage != "active":
        raise InvalidInput(f"The experiment {exp.pk} must be in the 'active' state.")
    tags = dict(_tag(t.get("key"), t.get("value")) for t in _dicts(tags, "tags"))
    run_name = _text(run_name or tags.get("mlflow.runName", ""), "run_name", 250, required=False)
    run_name = run_name or f"run-{uuid.uuid4().hex[:8]}"
    tags.setdefault("mlflow.runName", run_name)
    tags.setdefault("mlflow.user", actor.username)
    with transaction.atomic():
        run = Run.objects.create(
            run_uuid=uuid.uuid4().hex, experiment=exp, owner=actor, name=run_name,
            start_time=_int(start_time, "start_time", now_ms()),
        )
        RunTag.objects.bulk_create([RunTag(run=run, key=k, value=v) for k, v in tags.items()])
    return run


def _writable_run(actor, run_id):
    run = run_get(actor, run_id)
    tracking_require_write(actor, run, "run")
    return run


def run_update(*, actor, run_id, status=None, end_time=None, run_name=None):
    run = _writable_run(actor, run_id)
    fields = []
    if status not in (None, ""):
        if not isinstance(status, str) or status not in RUN_STATUSES:
            raise InvalidInput(f"Invalid run status {str(status)[:40]!r}.")
        run.status = status
        fields.append("status")
    if end_time not in (None, ""):
        run.end_time = _int(end_time, "end_time")
        fields.append("end_time")
    if run_name:
        run.name = _text(run_name, "run_name", 250)
        fields.append("name")
        RunTag.objects.update_or_create(run=run, key="mlflow.runName", defaults={"value": run.name})
    if fields:
        run.save(update_fields=fields)
    return run


def run_delete(*, actor, run_id, restore=False):
    run = _writable_run(actor, run_id)
    run.lifecycle_stage = "active" if restore else "deleted"
    run.save(update_fields=["lifecycle_stage"])


def _param_rows(run, params):
    rows = {}
    for p in params:
        if not isinstance(p, dict):
            raise InvalidInput("Each param must be an object {key, value}.")
        key, value = _tag(p.get("key"), p.get("value"))
        if len(value) > MAX_PARAM_VALUE:
            raise InvalidInput(f"Param value for {key!r} must be at most {MAX_PARAM_VALUE} characters.")
        rows[key] = value
    existing = dict(RunParam.objects.filter(run=run, key__in=list(rows)).values_list("key", "value"))
    for key, value in rows.items():
        if key in existing and existing[key] != value:
            raise InvalidInput(
                f"Changing param values is not allowed. Param with key='{key}' was already logged "
                f"with value='{existing[key][:100]}' for run ID='{run.run_uuid}'. Attempted logging new value "
                f"'{value[:100]}'."
            )
    return [RunParam(run=run, key=k, value=v) for k, v in rows.items() if k not in existing]


def _metric_row(run, m):
    if not isinstance(m, dict):
        raise InvalidInput("Each metric must be an object {key, value, timestamp, step}.")
    key, _ = _tag(m.get("key"), "")
    raw = m.get("value")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise InvalidInput(f"Metric {key!r} must have a numeric value, got {str(raw)[:40]!r}.") from None
    is_nan = math.isnan(value)
    if math.isinf(value):
        value = math.copysign(1.7976931348623157e308, value)
    return RunMetric(
        run=run, key=key, value=None if is_nan else value, is_nan=is_nan,
        timestamp=_int(m.get("timestamp"), "timestamp", now_ms()), step=_int(m.get("step"), "step", 0),
        model_id=str(m.get("model_id") or "")[:64],
    )


def run_log_batch(*, actor, run_id, metrics=(), params=(), tags=()):
    run = _writable_run(actor, run_id)
    metrics, params, tags = _dicts(metrics, "metrics"), _dicts(params, "params"), _dicts(tags, "tags")
    for what, items in (("metrics", metrics), ("params", params), ("tags", tags)):
        if len(items) > MAX_BATCH:
            raise InvalidInput(f"A batch may hold at most {MAX_BATCH} {what}, got {len(items)}.")
    with transaction.atomic():
        RunParam.objects.bulk_create(_param_rows(run, params))
        RunMetric.objects.bulk_create([_metric_row(run, m) for m in metrics])
        for t in tags:
            if not isinstance(t, dict):
                raise InvalidInput("Each tag must be an object {key, value}.")
            key, value = _tag(t.get("key"), t.get("value"))
            RunTag.objects.update_or_create(run=run, key=key, defaults={"value": value})
            if key == "mlflow.runName":
                Run.objects.filter(pk=run.pk).update(name=value[:250])
    return run


def run_delete_tag(*, actor, run_id, key):
    run = _writable_run(actor, run_id)
    key, _ = _tag(key, "")
    RunTag.objects.filter(run=run, key=key).delete()


def run_log_inputs(*, actor, run_id, datasets=(), models=()):
    run = _writable_run(actor, run_id)
    with transaction.atomic():
        for item in _dicts(datasets, "datasets"):
            if not isinstance(item.get("dataset"), dict):
                raise InvalidInput("Each dataset input must be an object {tags, dataset}.")
            d = item["dataset"]
            dataset, _ = Dataset.objects.get_or_create(
                experiment=run.experiment,
                name=_text(d.get("name"), "dataset.name"),
                digest=_text(d.get("digest"), "dataset.digest", 64),
                defaults={
                    "source_type": _text(d.get("source_type"), "dataset.source_type", 64, required=False),
                    "source": _text(d.get("source"), "dataset.source", 100_000, required=False),
                    "schema": _text(d.get("schema"), "dataset.schema", 1_000_000, required=False),
                    "profile": _text(d.get("profile"), "dataset.profile", 100_000, required=False),
                },
            )
            tags = [dict(zip(("key", "value"), _tag(t.get("key"), t.get("value")))) for t in _dicts(item.get("tags"), "tags")]
            RunInput.objects.update_or_create(run=run, dataset=dataset, defaults={"tags": tags})
    return run


def run_log_outputs(*, actor, run_id, models=()):
    run = _writable_run(actor, run_id)
    with transaction.atomic():
        for item in _dicts(models, "models"):
            logged = logged_model_get(actor, item.get("model_id"))
            RunOutput.objects.update_or_create(
                run=run, logged_model=logged, defaults={"step": _int(item.get("step"), "step", 0)}
            )
    return run


def metric_history(user, run_id, key):
    run = run_get(user, run_id)
    key = _text(key, "metric_key", 250)
    return RunMetric.objects.filter(run=run, key=key).order_by("step", "timestamp", "id")


def latest_metrics(run):
    latest = {}
    for m in RunMetric.objects.filter(run=run).order_by("key", "step", "timestamp", "id"):
        latest[m.key] = m
    return list(latest.values())


# --- Logged models ----------------------------------------------------------------------------
def logged_models(user):
    return tracking_visible(user, LoggedModel.objects.select_related("experiment", "owner"), "logged_model")


def logged_model_get(user, model_id):
    if not isinstance(model_id, str) or not _MODEL_ID_RE.match(model_id):
        raise NotFound(f"Logged model with ID '{str(model_id)[:80]}' not found.")
    # SQL compiled once per kind of user (registering from a logged model starts here).
    # Its run too: registering reads the run's datasets for lineage.
    found = compiled_for(user, ("logged-model-get",), lambda user, model_id: (
        logged_models(user).select_related("run").filter(model_id=model_id)[:1]), objects=True, one=True, model_id=model_id)
    obj = found[0] if found else None
    if obj is None:
        raise NotFound(f"Logged model with ID '{model_id}' not found.")
    return obj


def logged_model_prefix(logged):
    return f"mlartifacts/{logged.experiment_id}/models/{logged.model_id}/artifacts"


def logged_model_uri(logged):
    return f"mlflow-artifacts:/{logged.experiment_id}/models/{logged.model_id}/artifacts"


def logged_model_create(*, actor, experiment_id, name="", model_type="", source_run_id="", tags=(), params=()):
    exp = experiment_get(actor, experiment_id)
    tracking_require_write(actor, exp, "experiment.log_into")
    run = None
    if source_run_id:
        run = _writable_run(actor, source_run_id)
        if run.experiment_id != exp.pk:
            raise InvalidInput("The source run belongs to another experiment.")
    name = _text(name, "name", 500, required=False) or f"model-{uuid.uuid4().hex[:8]}"
    t = now_ms()
    with transaction.atomic():
        logged = LoggedModel.objects.create(
            model_id=f"m-{uuid.uuid4().hex}", experiment=exp, run=run, owner=actor, name=name,
            model_type=_text(model_type, "model_type", 500, required=False),
            source_run_id=run.run_uuid if run else "", creation_timestamp=t, last_updated_timestamp=t,
        )
        _logged_tags(logged, tags)
        _logged_params(logged, params)
    return logged


def _logged_tags(logged, tags):
    for t in _dicts(tags, "tags"):
        key, value = _tag(t.get("key"), t.get("value"))
        LoggedModelTag.objects.update_or_create(logged_model=logged, key=key, defaults={"value": value})


def _logged_params(logged, params):
    for p in _dicts(params, "params"):
        key, value = _tag(p.get("key"), p.get("value"))
        LoggedModelParam.objects.update_or_create(logged_model=logged, key=key, defaults={"value": value})


def _writable_logged_model(actor, model_id):
    logged = logged_model_get(actor, model_id)
    tracking_require_write(actor, logged, "logged_model")
    return logged


def logged_model_finalize(*, actor, model_id, status):
    logged = _writable_logged_model(actor, model_id)
    if status not in LOGGED_MODEL_STATUSES:
        raise InvalidInput(f"Invalid logged model status {str(status)[:40]!r}.")
    logged.status = status
    logged.last_updated_timestamp = now_ms()
    logged.save(update_fields=["status", "last_updated_timestamp"])
    return logged


def logged_model_set_tags(*, actor, model_id, tags):
    logged = _writable_logged_model(actor, model_id)
    with transaction.atomic():
        _logged_tags(logged, tags)
    return logged


def logged_model_delete_tag(*, actor, model_id, key):
    logged = _writable_logged_model(actor, model_id)
    key, _ = _tag(key, "")
    LoggedModelTag.objects.filter(logged_model=logged, key=key).delete()


def logged_model_log_params(*, actor, model_id, params):
    logged = _writable_logged_model(actor, model_id)
    with transaction.atomic():
        _logged_params(logged, params)


def logged_model_delete(*, actor, model_id):
    logged = _writable_logged_model(actor, model_id)
    logged.lifecycle_stage = "deleted"
    logged.save(update_fields=["lifecycle_stage"])


def experiment_ids(user, ids):
    """Visible experiment primary keys among `ids` (strings); invisible ones are dropped."""
    numbers = []
    if not isinstance(ids, (list, tuple)):
        raise InvalidInput("'experiment_ids' must be a list.")
    for value in ids:
        try:
            numbers.append(int(value))
        except (TypeError, ValueError):
            raise InvalidInput(f"Invalid experiment id {str(value)[:40]!r}.") from None
    return list(experiments(user).filter(pk__in=numbers).values_list("pk", flat=True))


def active(queryset):
    return queryset.filter(~Q(lifecycle_stage="deleted"))


# --- Run search (`runs/search`): MLflow's grammar over attributes, tags, params and metrics ----
def _param_q(clause):
    rows = RunParam.objects.filter(run=OuterRef("pk"), key=clause.key).filter(search.string_clause_q(clause))
    return Q(Exists(rows))


def _metric_q(clause):
    """Compares the metric's latest value (highest step, then timestamp), as MLflow does."""
    latest = RunMetric.objects.filter(run=OuterRef("run"), key=clause.key).order_by("-step", "-timestamp", "-id")
    rows = RunMetric.objects.filter(run=OuterRef("pk"), key=clause.key, is_nan=False).filter(
        pk=Subquery(latest.values("pk")[:1])
    )
    return Q(Exists(rows.filter(search.number_clause_q(clause))))


def _latest_metric(name):
    return RunMetric.objects.filter(run=OuterRef("pk"), key=name).order_by("-step", "-timestamp", "-id")


def _metric_order(name, descending):
    """By the metric's latest value; as MLflow: runs whose latest value is NaN come after those
    with a number, runs without the metric last, in either direction."""
    latest = _latest_metric(name)
    rank = Coalesce(Subquery(latest.annotate(rank=Case(When(is_nan=True, then=Value(1)), default=Value(0)))
                             .values("rank")[:1]), Value(2))
    value = Subquery(latest.values("value")[:1])
    return [rank.asc(), value.desc() if descending else value.asc()]


def _value_order(table):
    def order(name, descending):
        """By the run's param or tag value (strings); runs without it last, in either direction."""
        value = Subquery(table.objects.filter(run=OuterRef("pk"), key=name).values("value")[:1])
        return [value.desc(nulls_last=True) if descending else value.asc(nulls_last=True)]

    return order


RUN_GRAMMAR = search.Grammar(
    entity="runs",
    attributes={
        "run_id": search.Key("run_uuid", search.STRING_OPS + search.LIST_OPS),
        "run_name": search.Key("name", search.STRING_OPS + search.LIST_OPS),
        "status": search.Key("status", search.STRING_OPS + search.LIST_OPS),
        "user_id": search.Key("owner__username", ("=", "!=")),
        "start_time": search.Key("start_time", search.NUMBER_OPS, "number"),
        "end_time": search.Key("end_time", search.NUMBER_OPS, "number"),
    },
    tag_table=RunTag,
    tag_owner="run",
    order_keys={"start_time": "start_time", "end_time": "end_time", "run_name": "name", "status": "status",
                "run_id": "run_uuid"},
    default_order=("-start_time", "-id"),
    tie_breakers=("-id",),
    extra={"param": _param_q, "metric": _metric_q},
    extra_order={"metric": _metric_order, "param": _value_order(RunParam), "tag": _value_order(RunTag)},
)


def runs_search(user, experiment_ids_, *, filter_string="", order=None, view_type="ACTIVE_ONLY", page_token=None,
                size=1000):
    """Visible runs of the given experiments: (rows, next_page_token)."""
    queryset = runs(user).filter(experiment_id__in=experiment_ids(user, experiment_ids_))
    view_type = str(view_type or "ACTIVE_ONLY").upper()
    if view_type == "ACTIVE_ONLY":
        queryset = queryset.filter(lifecycle_stage="active")
    elif view_type == "DELETED_ONLY":
        queryset = queryset.filter(lifecycle_stage="deleted")
    return search.search(queryset, RUN_GRAMMAR, filter_string=filter_string, order=order, page_token=page_token,
                         size=size)
