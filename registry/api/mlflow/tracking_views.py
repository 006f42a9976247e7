"""MLflow tracking REST (`/api/2.0/mlflow/experiments|runs|metrics|logged-models/…`): what
`mlflow.start_run`, `log_param/metric/input`, `mlflow.<flavor>.log_model` and `register_model`
call. Thin: fields → `registry.tracking` (which decides visibility and ownership) → JSON."""

from django.db.models import Q
from rest_framework.response import Response

from registry import search, tracking
from registry.errors import InvalidInput
from registry.models import ExperimentTag, LoggedModelTag

from . import serializers as s
from .base import MlflowView

RUNS_MAX_RESULTS_LIMIT = 50_000
LOGGED_MODELS_MAX_RESULTS_LIMIT = 1000

LOGGED_MODEL_GRAMMAR = search.Grammar(
    entity="logged models",
    attributes={
        "name": search.Key("name", search.STRING_OPS + search.LIST_OPS),
        "source_run_id": search.Key("source_run_id", search.STRING_OPS + search.LIST_OPS),
        "model_id": search.Key("model_id", search.STRING_OPS + search.LIST_OPS),
        "status": search.Key("status", search.STRING_OPS + search.LIST_OPS),
    },
    tag_table=LoggedModelTag,
    tag_owner="logged_model",
    order_keys={"creation_timestamp": "creation_timestamp", "last_updated_timestamp": "last_updated_timestamp",
                "name": "name"},
    default_order=("-creation_timestamp", "-id"),
    tie_breakers=("-id",),
)


def _run_id(view):
    """Requests carry both `run_id` and the older `run_uuid`."""
    return view.text("run_id", required=False) or view.text("run_uuid")


def _run_response(user, run_id):
    return Response({"run": s.run_out(tracking.run_get(user, run_id))})


# --- Experiments ------------------------------------------------------------------------------
class ExperimentByName(MlflowView):
    def get(self, request):
        return Response({"experiment": s.experiment_out(tracking.experiment_get_by_name(request.user, self.text("experiment_name")))})


class CreateExperiment(MlflowView):
    def post(self, request):
        if self.raw("artifact_location"):
            raise InvalidInput("This server chooses artifact locations itself; leave artifact_location empty.")
        exp = tracking.experiment_create(actor=request.user, name=self.text("name"), tags=self.get_list("tags"))
        return Response({"experiment_id": str(exp.pk)})


class GetExperiment(MlflowView):
    def get(self, request):
        return Response({"experiment": s.experiment_out(tracking.experiment_get(request.user, self.text("experiment_id")))})


class SearchExperiments(MlflowView):
    """Name and tag filters (`name LIKE 'x%'`, `tags.k = 'v'`…); pages like the registry searches."""

    GRAMMAR = search.Grammar(
        entity="experiments",
        attributes={"name": search.Key("name", search.STRING_OPS + search.LIST_OPS)},
        tag_table=ExperimentTag, tag_owner="experiment",
        order_keys={"name": "name", "experiment_id": "id", "creation_time": "creation_time",
                    "last_update_time": "last_update_time"},
        default_order=("-last_update_time", "id"), tie_breakers=("id",),
    )

    def _answer(self, request):
        size = search.max_results(self.raw("max_results"), 1000, 50_000)
        view_type = str(self.raw("view_type") or "ACTIVE_ONLY").upper()
        queryset = tracking.experiments(request.user).prefetch_related("tags")
        if view_type == "ACTIVE_ONLY":
            queryset = queryset.filter(lifecycle_stage="active")
        elif view_type == "DELETED_ONLY":
            queryset = queryset.filter(lifecycle_stage="deleted")
        filter_string = self.raw("filter")
        rows, token = search.search(
            queryset, self.GRAMMAR, filter_string=filter_string, order=self.get_list("order_by"),
            page_token=self.raw("page_token"), size=size,
        )
        body = {"experiments": [s.experiment_out(e) for e in rows]}
        if token:
            body["next_page_token"] = token
        return Response(body)

    get = post = _answer


class SetExperimentTag(MlflowView):
    def post(self, request):
        exp = tracking.experiment_get(request.user, self.text("experiment_id"))
        tracking.experiment_set_tag(actor=request.user, experiment=exp, key=self.text("key"), value=self.raw("value"))
        return Response({})


# --- Runs -------------------------------------------------------------------------------------
class CreateRun(MlflowView):
    def post(self, request):
        run = tracking.run_create(
            actor=request.user, experiment_id=self.raw("experiment_id"), start_time=self.raw("start_time"),
            run_name=self.raw("run_name") or "", tags=self.get_list("tags"),
        )
        return _run_response(request.user, run.run_uuid)


class GetRun(MlflowView):
    def get(self, request):
        return _run_response(request.user, _run_id(self))


class UpdateRun(MlflowView):
    def post(self, request):
        run = tracking.run_update(
            actor=request.user, run_id=_run_id(self), status=self.raw("status"), end_time=self.raw("end_time"),
            run_name=self.raw("run_name"),
        )
        return Response({"run_info": s.run_info_out(run)})


class DeleteRun(MlflowView):
    def post(self, request):
        tracking.run_delete(actor=request.user, run_id=self.text("run_id"))
        return Response({})


class RestoreRun(MlflowView):
    def post(self, request):
        tracking.run_delete(actor=request.user, run_id=self.text("run_id"), restore=True)
        return Response({})


class LogParam(MlflowView):
    def post(self, request):
        tracking.run_log_batch(
            actor=request.user, run_id=_run_id(self), params=[{"key": self.text("key"), "value": self.raw("value")}]
        )
        return Response({})


class LogMetric(MlflowView):
    def post(self, request):
        metric = {k: self.raw(k) for k in ("key", "value", "timestamp", "step", "model_id")}
        tracking.run_log_batch(actor=request.user, run_id=_run_id(self), metrics=[metric])
        return Response({})


class LogBatch(MlflowView):
    def post(self, request):
        tracking.run_log_batch(
            actor=request.user, run_id=self.text("run_id"), metrics=self.get_list("metrics"),
            params=self.get_list("params"), tags=self.get_list("tags"),
        )
        return Response({})


class SetRunTag(MlflowView):
    def post(self, request):
        tracking.run_log_batch(
            actor=request.user, run_id=_run_id(self), tags=[{"key": self.text("key"), "value": self.raw("value")}]
        )
        return Response({})


class DeleteRunTag(MlflowView):
    def post(self, request):
        tracking.run_delete_tag(actor=request.user, run_id=self.text("run_id"), key=self.text("key"))
        return Response({})


class LogInputs(MlflowView):
    def post(self, request):
        tracking.run_log_inputs(actor=request.user, run_id=self.text("run_id"), datasets=self.get_list("datasets"))
        return Response({})


class LogOutputs(MlflowView):
    def post(self, request):
        tracking.run_log_outputs(actor=request.user, run_id=self.text("run_id"), models=self.get_list("models"))
        return Response({})


class SearchRuns(MlflowView):
    """MLflow's run filter grammar (attributes, tags, params, metrics' latest values); order_by
    on attributes (start_time, end_time, run_name, status, run_id), `metrics.<key>` (latest
    value; NaN after numbers, runs without it last), `params.<key>` and `tags.<key>`."""

    def post(self, request):
        size = search.max_results(self.raw("max_results"), 1000, RUNS_MAX_RESULTS_LIMIT)
        rows, token = tracking.runs_search(
            request.user, self.get_list("experiment_ids"), filter_string=self.raw("filter"),
            order=self.get_list("order_by"), view_type=self.raw("run_view_type"),
            page_token=self.raw("page_token"), size=size,
        )
        body = {"runs": [s.run_out(r) for r in rows]}
        if token:
            body["next_page_token"] = token
        return Response(body)


class MetricHistory(MlflowView):
    def get(self, request):
        rows = tracking.metric_history(request.user, _run_id(self), self.text("metric_key"))
        return Response({"metrics": [s.metric_out(m) for m in rows]})


# --- Logged models ----------------------------------------------------------------------------
class CreateLoggedModel(MlflowView):
    def post(self, request):
        logged = tracking.logged_model_create(
            actor=request.user, experiment_id=self.text("experiment_id"), name=self.raw("name") or "",
            model_type=self.raw("model_type") or "", source_run_id=self.raw("source_run_id") or "",
            tags=self.get_list("tags"), params=self.get_list("params"),
        )
        return Response({"model": s.logged_model_out(logged)})


class LoggedModelView(MlflowView):
    def get(self, request, model_id):
        return Response({"model": s.logged_model_out(tracking.logged_model_get(request.user, model_id))})

    def patch(self, request, model_id):
        """Finalize: `{"status": "LOGGED_MODEL_READY"}`."""
        logged = tracking.logged_model_finalize(actor=request.user, model_id=model_id, status=self.text("status"))
        return Response({"model": s.logged_model_out(logged)})

    def delete(self, request, model_id):
        tracking.logged_model_delete(actor=request.user, model_id=model_id)
        return Response({})


class LoggedModelTags(MlflowView):
    def patch(self, request, model_id):
        logged = tracking.logged_model_set_tags(actor=request.user, model_id=model_id, tags=self.get_list("tags"))
        return Response({"model": s.logged_model_out(logged)})


class LoggedModelTagDelete(MlflowView):
    def delete(self, request, model_id, key):
        tracking.logged_model_delete_tag(actor=request.user, model_id=model_id, key=key)
        return Response({})


class LoggedModelParams(MlflowView):
    def post(self, request, model_id):
        tracking.logged_model_log_params(actor=request.user, model_id=model_id, params=self.get_list("params"))
        return Response({})


class SearchLoggedModels(MlflowView):
    def post(self, request):
        size = search.max_results(self.raw("max_results"), 100, LOGGED_MODELS_MAX_RESULTS_LIMIT)
        ids = tracking.experiment_ids(request.user, self.get_list("experiment_ids"))
        queryset = tracking.logged_models(request.user).filter(Q(experiment_id__in=ids), lifecycle_stage="active")
        queryset = queryset.prefetch_related("tags", "params")
        order = []
        for item in self.get_list("order_by"):
            if not isinstance(item, dict) or not item.get("field_name"):
                raise InvalidInput("Each order_by item must be {field_name, ascending}.")
            order.append(f"{item['field_name']} {'ASC' if item.get('ascending', True) else 'DESC'}")
        rows, token = search.search(
            queryset, LOGGED_MODEL_GRAMMAR, filter_string=self.raw("filter"), order=order,
            page_token=self.raw("page_token"), size=size,
        )
        body = {"models": [s.logged_model_out(m) for m in rows]}
        if token:
            body["next_page_token"] = token
        return Response(body)
