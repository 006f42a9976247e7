"""The run pages' reads (experiments with run counts, a runs table with key params and latest
metrics as columns, one run's params, metrics, datasets, logged models and artifacts) and
registering a model version from a run page (issue 4).

Every read goes through `tracking` / `permissions` (filtered in the database, a constant number
of queries whatever the number of rows); the register service calls the same domain function as
the MLflow API's `model-versions/create` (`sources.version_register`), so the rules, the source
checks and the job are the same.
"""

from django.db.models import Count, IntegerField, Max, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from . import artifacts_proxy, docs, search, services, sources, tracking
from .errors import InvalidInput, NotFound
from .models import Experiment, ModelVersion, RunInput, RunMetric, RunParam, RunTag, Schema
from .permissions import filter_holding, visible, with_capabilities

KEY_COLUMNS = 6  # params and metrics shown as columns of the runs table (each)
SYSTEM_TAG_PREFIX = "mlflow."
_OWNERS = ("owner_user", "owner_group")


# --- Experiments ------------------------------------------------------------------------------
def experiments_with_counts(user):
    """Active experiments `user` may see, each with `run_count` and `last_run_time` over the
    active runs `user` may see in it (in the Default experiment, their own), in one query."""
    runs = tracking.active(tracking.runs(user)).filter(experiment=OuterRef("pk")).order_by()
    count = runs.values("experiment").annotate(n=Count("pk")).values("n")
    last = runs.values("experiment").annotate(t=Max("start_time")).values("t")
    return (
        tracking.experiments(user)
        .filter(lifecycle_stage="active")
        .select_related(*_OWNERS)
        .annotate(run_count=Coalesce(Subquery(count, output_field=IntegerField()), 0), last_run_time=Subquery(last))
        .order_by("name", "id")
    )


def experiment_get(user, experiment_id):
    """An experiment `user` may see, annotated with what they may do to it (NotFound else)."""
    qs = Experiment.objects.select_related(*_OWNERS).filter(pk=experiment_id)
    obj = with_capabilities(user, qs).first()
    if obj is None or not obj.cap_execute:
        raise NotFound(f"No Experiment with id={experiment_id} exists")
    return obj


# --- Runs table -------------------------------------------------------------------------------
def experiment_runs(user, experiment, filter_string="", order=""):
    """Active runs of `experiment` that `user` may see, optionally filtered and ordered with
    MLflow's run search grammar (`metrics.acc > 0.9 and params.lr = '0.1'`, `metrics.acc DESC`);
    newest first by default. InvalidInput when either does not parse."""
    qs = tracking.active(tracking.runs(user)).filter(experiment=experiment)
    if filter_string:
        qs = qs.filter(search.filter_q(tracking.RUN_GRAMMAR, filter_string))
    return qs.order_by(*search.order_by(tracking.RUN_GRAMMAR, [order] if order else []))


def key_columns(runs, limit=KEY_COLUMNS):
    """(param keys, metric keys) logged by the most of `runs` (one page of runs: the columns
    follow what is shown, and the cost stays bounded however long the experiment's history),
    `limit` of each, then by name."""
    ids = [r.pk for r in runs]

    def top(table):
        if not ids:
            return []
        rows = (
            table.objects.filter(run__in=ids).values("key")
            .annotate(n=Count("run", distinct=True)).order_by("-n", "key")[:limit]
        )
        return [r["key"] for r in rows]

    return top(RunParam), top(RunMetric)


def _latest_metrics(run_filter):
    """The latest value (highest step, then timestamp) of each metric key, per run."""
    newest = RunMetric.objects.filter(run=OuterRef("run"), key=OuterRef("key")).order_by("-step", "-timestamp", "-id")
    return RunMetric.objects.filter(run_filter).filter(pk=Subquery(newest.values("pk")[:1]))


def fill_columns(runs, param_keys, metric_keys):
    """Put `param_cells` and `metric_cells` (one per key, None when not logged) on each of
    `runs` (one page, a list): two queries."""
    ids = [r.pk for r in runs]
    params, metrics = {}, {}
    if param_keys and ids:
        for run_id, key, value in RunParam.objects.filter(run__in=ids, key__in=param_keys).values_list("run", "key", "value"):
            params[(run_id, key)] = value
    if metric_keys and ids:
        for m in _latest_metrics(Q(run__in=ids, key__in=metric_keys)):
            metrics[(m.run_id, m.key)] = m
    for r in runs:
        r.param_cells = [params.get((r.pk, k)) for k in param_keys]
        r.metric_cells = [metrics.get((r.pk, k)) for k in metric_keys]
    return runs


# --- One run ----------------------------------------------------------------------------------
def run_get(user, experiment, run_id):
    """A run of `experiment` that `user` may see (NotFound for any other)."""
    run = tracking.run_get(user, run_id)
    if run.experiment_id != experiment.pk:
        raise NotFound(f"Run '{run_id}' not found")
    run.experiment = experiment  # the annotated one: its capabilities cost no query
    return run


def run_details(user, run):
    """What the run page shows besides the run itself: a constant number of queries."""
    history = RunMetric.objects.filter(run=run, key=OuterRef("key")).order_by().values("key")
    metrics = _latest_metrics(Q(run=run)).annotate(
        history=Subquery(history.annotate(n=Count("pk")).values("n"), output_field=IntegerField())
    ).order_by("key")
    tags = list(RunTag.objects.filter(run=run).order_by("key"))
    return {
        "params": list(RunParam.objects.filter(run=run).order_by("key")),
        "metrics": list(metrics),
        "inputs": [_input_row(i) for i in RunInput.objects.filter(run=run).select_related("dataset").order_by("dataset__name", "pk")],
        "logged_models": list(run_logged_models(user, run)),
        "tags": [t for t in tags if not t.key.startswith(SYSTEM_TAG_PREFIX)],
        "system_tags": [t for t in tags if t.key.startswith(SYSTEM_TAG_PREFIX)],
        "registered_versions": list(
            visible(user, ModelVersion.objects.filter(run_id=run.run_uuid).select_related("model"))
            .order_by("model__full_name", "version")[:50]
        ),
    }


def _input_row(item):
    context = next((t.get("value", "") for t in item.tags or [] if isinstance(t, dict) and t.get("key") == "mlflow.data.context"), "")
    return {"dataset": item.dataset, "context": context}


def run_logged_models(user, run):
    """Active logged models the run made (`mlflow.<flavor>.log_model` inside the run)."""
    made_here = Q(run=run) | Q(source_run_id=run.run_uuid)
    return tracking.active(tracking.logged_models(user).filter(made_here)).order_by("-creation_timestamp", "-id")


def run_artifacts(user, run, path=""):
    """The entries directly inside `path` (relative, "" for the top) of the run's artifacts:
    [{path (relative to the run), name, is_dir, file_size}], through the artifact proxy's checks
    (InvalidInput for a bad path, NotFound for an invisible run)."""
    path = path.strip("/")
    proxy_path = f"{run.experiment_id}/{run.run_uuid}/artifacts" + (f"/{path}" if path else "")
    location = artifacts_proxy.locate(user, proxy_path)
    entries = artifacts_proxy.list_dir(location)
    for e in entries:
        e["name"] = e["path"]
        e["path"] = f"{path}/{e['path']}" if path else e["path"]
    return entries


def run_artifact_file(user, run, path):
    """An open file of the run's artifacts and its name (NotFound when it is not a file)."""
    location = artifacts_proxy.locate(user, f"{run.experiment_id}/{run.run_uuid}/artifacts/{path}")
    if not artifacts_proxy.is_file(location):
        raise NotFound(f"No artifact at {path[:300]!r}.")
    return artifacts_proxy.open_file(location), location.path.rsplit("/", 1)[-1]


# --- Registering from a run -------------------------------------------------------------------
def register_sources(run, logged_models, artifacts):
    """[(source, label)] a run page offers: its logged models, and top-level artifact folders
    (those with an MLmodel are what `log_model(artifact_path=…)` wrote in MLflow 2)."""
    choices = [(f"models:/{m.model_id}", f"Logged model “{m.name}” ({m.model_id})") for m in logged_models]
    choices += [(f"runs:/{run.run_uuid}/{e['path']}", f"Artifact folder {e['path']}/") for e in artifacts if e["is_dir"]]
    return choices


def register_targets(user):
    """(models `user` may add versions to, schemas where `user` may create a model)."""
    from .jobs import copy_targets  # models one owns: the same rule as a copy's target

    models = list(copy_targets(user).only("id", "full_name"))
    schemas = list(filter_holding(user, Schema.objects.select_related("catalog"), "CREATE MODEL").order_by("catalog__name", "name"))
    return models, schemas


def version_register_from_run(*, actor, run, source, model=None, schema=None, new_model=""):
    """Register `source` (a source of `run`: `runs:/<run_id>/<path>` or `models:/<model_id>`)
    as a new version of `model` (which `actor` must own), or of a new model `new_model` created
    in `schema` (where `actor` needs CREATE MODEL). All or nothing: a refused source or a broker
    that does not answer leaves no new model behind. Returns the PENDING_REGISTRATION version;
    its register job is queued on commit."""
    with docs.changing() as changed:  # a new model's doc written once, at the end
        if model is None:
            if schema is None:
                raise InvalidInput("Choose the model to register into, or a schema for a new one.")
            model = services.model_create(actor=actor, schema=schema, name=new_model)
        changed.add(model.pk)
        return sources.version_register(actor=actor, model=model, source=source, run_id=run.run_uuid)
