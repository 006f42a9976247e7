"""The MLflow model registry REST API (`/api/2.0/mlflow/registered-models/…`, `model-versions/…`),
as the stock MLflow client calls it (MLFLOW_API.md "Model registry").

Each view: read fields → `selectors` (404 for what the caller may not see; prompts are never
models here) → `services` / `sources` (which decide permissions, names and sources) → MLflow's
JSON. No permission is decided in this module.
"""

from rest_framework.response import Response

from registry import names, search, selectors, services, sources
from registry.errors import InvalidInput

from . import serializers as s
from .base import EndpointNotFound, MlflowView


def _name(value):
    """A malformed name is a 400 naming the rule; a well-formed one may still be absent (404)."""
    names.parse_full_name(value)
    return value


def _model(user, name):
    return selectors.registry_model_get(user, _name(name))


def _version(user, name, version):
    return selectors.model_version(_model(user, name), version)


def _model_response(user, name, prompts=False):
    """The model as it is now (after a write, `prompts`: the write was allowed, prompt or not)."""
    return Response({"registered_model": selectors.registry_model_doc(user, name, prompts=prompts)})


def _version_response(user, name, version):
    return Response({"model_version": s.version_out(selectors.registry_version_row(user, name, version=version))})


def _tags(value):
    if value in (None, ""):
        return []
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise InvalidInput("Parameter 'tags' must be a list of {key, value}.")
    return value


# --- Registered models ------------------------------------------------------------------------
class CreateModel(MlflowView):
    def post(self, request):
        catalog, schema_name, model_name = names.parse_full_name(self.text("name"))
        description = self.raw("description") or ""
        schema = selectors.schema_get(request.user, catalog, schema_name)
        model = services.model_create(
            actor=request.user, schema=schema, name=model_name, description=description,
            tags=_tags(self.raw("tags")),
        )
        return _model_response(request.user, model.full_name, prompts=True)


class GetModel(MlflowView):
    cache_reads = True

    def get(self, request):
        return _model_response(request.user, _name(self.text("name")))


class RenameModel(MlflowView):
    def post(self, request):
        model = _model(request.user, self.text("name"))
        services.model_rename(actor=request.user, model=model, new_name=self.text("new_name"))
        return _model_response(request.user, model.full_name, prompts=True)


class UpdateModel(MlflowView):
    def patch(self, request):
        model = _model(request.user, self.text("name"))
        services.model_update(actor=request.user, model=model, description=self.raw("description") or "")
        return _model_response(request.user, model.full_name, prompts=True)


class DeleteModel(MlflowView):
    def delete(self, request):
        services.model_delete(actor=request.user, model=_model(request.user, self.text("name")))
        return Response({})


class SearchModels(MlflowView):
    cache_reads = True

    def get(self, request):
        size = search.max_results(
            self.raw("max_results"), search.MODEL_MAX_RESULTS_DEFAULT, search.MODEL_MAX_RESULTS_LIMIT
        )
        models, token = selectors.registry_model_search(
            request.user, filter_string=self.raw("filter"), order=self.get_list("order_by"),
            page_token=self.raw("page_token"), size=size,
        )
        body = {"registered_models": models}
        if token:
            body["next_page_token"] = token
        return Response(body)


class LatestVersions(MlflowView):
    """Unity Catalog has no stages: every version is in stage "None"."""

    cache_reads = True

    def _answer(self, request):
        latest = selectors.registry_model_row(request.user, _name(self.text("name")))["latest"]
        stages = [str(st).lower() for st in self.get_list("stages")]
        if latest is None or (stages and "none" not in stages):
            return Response({"model_versions": []})
        return Response({"model_versions": [s.version_out(latest)]})

    get = post = _answer


class ModelTagView(MlflowView):
    def post(self, request):
        model = _model(request.user, self.text("name"))
        value = self.raw("value")
        if value is None:
            raise InvalidInput("Missing value for required parameter 'value'.")
        services.model_tag_set(actor=request.user, model=model, key=self.text("key"), value=value)
        return Response({})

    def delete(self, request):
        model = _model(request.user, self.text("name"))
        services.model_tag_delete(actor=request.user, model=model, key=self.text("key"))
        return Response({})


class AliasView(MlflowView):
    cache_reads = True

    def get(self, request):
        version = selectors.registry_version_row(request.user, _name(self.text("name")), alias=self.text("alias"))
        return Response({"model_version": s.version_out(version)})

    def post(self, request):
        model = _model(request.user, self.text("name"))
        services.alias_set(actor=request.user, model=model, alias=self.text("alias"), version=self.text("version"))
        return Response({})

    def delete(self, request):
        model = _model(request.user, self.text("name"))
        services.alias_delete(actor=request.user, model=model, alias=self.text("alias"))
        return Response({})


# --- Model versions ---------------------------------------------------------------------------
class CreateVersion(MlflowView):
    def post(self, request):
        model = _model(request.user, self.text("name"))
        version = sources.version_register(
            actor=request.user, model=model, source=self.text("source"),
            run_id=self.raw("run_id") or "", model_id=self.raw("model_id") or "",
            run_link=self.text("run_link", required=False), description=self.raw("description") or "",
            tags=_tags(self.raw("tags")),
        )
        return Response({"model_version": s.version_out(selectors.registry_version_made(version))})


class GetVersion(MlflowView):
    cache_reads = True

    def get(self, request):
        return _version_response(request.user, self.text("name"), self.text("version"))


class UpdateVersion(MlflowView):
    def patch(self, request):
        version = _version(request.user, self.text("name"), self.text("version"))
        services.version_update(actor=request.user, version=version, description=self.raw("description") or "")
        return _version_response(request.user, version.model.full_name, version.version)


class DeleteVersion(MlflowView):
    def delete(self, request):
        version = _version(request.user, self.text("name"), self.text("version"))
        services.version_delete(actor=request.user, version=version)
        return Response({})


class SearchVersions(MlflowView):
    cache_reads = True

    def get(self, request):
        size = search.max_results(
            self.raw("max_results"), search.VERSION_MAX_RESULTS_DEFAULT, search.VERSION_MAX_RESULTS_LIMIT
        )
        rows, token = selectors.registry_version_search(
            request.user, filter_string=self.raw("filter"), order=self.get_list("order_by"),
            page_token=self.raw("page_token"), size=size,
        )
        body = {"model_versions": [s.version_out(v) for v in rows]}
        if token:
            body["next_page_token"] = token
        return Response(body)


class DownloadUri(MlflowView):
    """The version's files through our artifact proxy (read with EXECUTE on the model)."""

    cache_reads = True

    def get(self, request):
        version = _version(request.user, self.text("name"), self.text("version"))
        return Response({"artifact_uri": f"mlflow-artifacts:/registered-models/{version.model.full_name}/{version.version}"})


class VersionTagView(MlflowView):
    def post(self, request):
        version = _version(request.user, self.text("name"), self.text("version"))
        value = self.raw("value")
        if value is None:
            raise InvalidInput("Missing value for required parameter 'value'.")
        services.version_tag_set(actor=request.user, version=version, key=self.text("key"), value=value)
        return Response({})

    def delete(self, request):
        version = _version(request.user, self.text("name"), self.text("version"))
        services.version_tag_delete(actor=request.user, version=version, key=self.text("key"))
        return Response({})


class TransitionStage(MlflowView):
    def post(self, request):
        _version(request.user, self.text("name"), self.text("version"))
        raise InvalidInput("Stages are not supported by this registry (Unity Catalog model): use aliases instead.")


class UnknownEndpoint(MlflowView):
    """A JSON 404 ENDPOINT_NOT_FOUND rather than Django's HTML page."""

    def _answer(self, request, *args, **kwargs):
        raise EndpointNotFound("No such MLflow endpoint on this server.")

    get = post = put = patch = delete = _answer
