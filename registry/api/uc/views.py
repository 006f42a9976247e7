"""The Unity Catalog REST API (`/api/2.1/unity-catalog/`): catalogs, schemas, registered models,
versions and grants.

Each method: validate the body's types → look the object up through `selectors` (404 for what
the caller may not see) → call `services` (which decide permissions and names) → answer Unity
Catalog's shape. Writes read their fields from the JSON body only, never the query string.
Errors: `registry.api.errors` with the UC style.
"""

import base64
import binascii

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from registry import lineage, names, runs, selectors, services
from registry.errors import InvalidInput, NotFound
from registry.models import Alias

from ..base import ApiView
from ..errors import UC
from . import serializers as s

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


class UCView(ApiView):
    error_style = UC


def _errors(*statuses):
    return {status: s.ErrorOut for status in (401, *statuses)}


PAGE_PARAMS = [
    OpenApiParameter("max_results", int, description=f"Page size, 1–{MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE})."),
    OpenApiParameter("page_token", str, description="`next_page_token` of the previous page."),
]


def _valid(serializer_class, data):
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _page(request, queryset, key, serializer_class):
    """One page of `queryset` as `{key: [...], next_page_token?}`."""
    raw_size = request.query_params.get("max_results") or "0"
    if not raw_size.isdigit() or len(raw_size) > 6:
        raise InvalidInput(f"max_results must be an integer between 1 and {MAX_PAGE_SIZE}.")
    size = int(raw_size) or DEFAULT_PAGE_SIZE
    if size > MAX_PAGE_SIZE:
        raise InvalidInput(f"max_results must be an integer between 1 and {MAX_PAGE_SIZE}.")
    offset = 0
    token = request.query_params.get("page_token")
    if token:
        try:
            kind, _, number = base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii").partition(":")
            offset = int(number)
            if kind != "offset" or offset < 0:
                raise ValueError
        except (ValueError, UnicodeError, binascii.Error):
            raise InvalidInput("Invalid page_token.") from None
    rows = list(queryset[offset : offset + size + 1])
    body = {key: serializer_class(rows[:size], many=True).data}
    if len(rows) > size:
        body["next_page_token"] = base64.urlsafe_b64encode(f"offset:{offset + size}".encode()).decode()
    return Response(body)


def _update(user, obj, data):
    """A PATCH's validated body → `services.securable_update` (a field left out is not changed;
    a null comment clears it)."""
    services.securable_update(
        actor=user, obj=obj, description=(data["comment"] or "") if "comment" in data else None,
        new_name=data.get("new_name"), owner=data.get("owner"),
    )


def _with_aliases(queryset):
    return queryset.select_related("created_by").prefetch_related(
        Prefetch("aliases", queryset=Alias.objects.select_related("version").order_by("name"))
    )


def _schema(user, full_name):
    catalog_name, schema_name = names.parse_schema_full_name(full_name)
    return selectors.schema_get(user, catalog_name, schema_name)


def _model(user, full_name):
    names.parse_full_name(full_name)  # a malformed name is a 400 naming the rule
    return selectors.model_get(user, full_name)


# --- Catalogs -------------------------------------------------------------------------------
class CatalogsView(UCView):
    @extend_schema(operation_id="uc_catalogs_list", parameters=PAGE_PARAMS, responses={200: s.CatalogListOut, **_errors(400)})
    def get(self, request):
        """Catalogs the caller may use (USE CATALOG, ownership, or admin)."""
        return _page(request, selectors.catalogs(request.user).select_related("created_by"), "catalogs", s.CatalogOut)

    @extend_schema(operation_id="uc_catalogs_create", request=s.CatalogCreateIn, responses={200: s.CatalogOut, **_errors(400, 403, 409)})
    def post(self, request):
        """Create a catalog (metastore admins only)."""
        data = _valid(s.CatalogCreateIn, self.body())
        catalog = services.catalog_create(actor=request.user, name=data["name"], description=data.get("comment") or "")
        return Response(s.CatalogOut(catalog).data)


class CatalogView(UCView):
    @extend_schema(operation_id="uc_catalogs_get", responses={200: s.CatalogOut, **_errors(404)})
    def get(self, request, name):
        return Response(s.CatalogOut(selectors.catalog_get(request.user, name)).data)

    @extend_schema(operation_id="uc_catalogs_update", request=s.SecurableUpdateIn, responses={200: s.CatalogOut, **_errors(400, 403, 404)})
    def patch(self, request, name):
        """Change the comment and/or the owner (owner or admin). All or nothing."""
        catalog = selectors.catalog_get(request.user, name)
        _update(request.user, catalog, _valid(s.SecurableUpdateIn, self.body()))
        catalog.refresh_from_db()
        return Response(s.CatalogOut(catalog).data)

    @extend_schema(operation_id="uc_catalogs_delete", request=None, responses={200: s.EmptyOut, **_errors(400, 403, 404)})
    def delete(self, request, name):
        """Delete an empty catalog (owner or admin)."""
        services.catalog_delete(actor=request.user, catalog=selectors.catalog_get(request.user, name))
        return Response({})


# --- Schemas --------------------------------------------------------------------------------
class SchemasView(UCView):
    @extend_schema(
        operation_id="uc_schemas_list",
        parameters=[OpenApiParameter("catalog_name", str, description="Only this catalog's schemas."), *PAGE_PARAMS],
        responses={200: s.SchemaListOut, **_errors(400, 404)},
    )
    def get(self, request):
        """Schemas the caller may use (USE CATALOG + USE SCHEMA, ownership, or admin)."""
        catalog_name = request.query_params.get("catalog_name")
        catalog = selectors.catalog_get(request.user, catalog_name) if catalog_name else None
        return _page(request, selectors.schemas(request.user, catalog).select_related("created_by"), "schemas", s.SchemaOut)

    @extend_schema(operation_id="uc_schemas_create", request=s.SchemaCreateIn, responses={200: s.SchemaOut, **_errors(400, 403, 404, 409)})
    def post(self, request):
        """Create a schema (CREATE SCHEMA on the catalog); the caller owns it."""
        data = _valid(s.SchemaCreateIn, self.body())
        catalog = selectors.catalog_get(request.user, data["catalog_name"])
        schema = services.schema_create(
            actor=request.user, catalog=catalog, name=data["name"], description=data.get("comment") or ""
        )
        return Response(s.SchemaOut(schema).data)


class SchemaView(UCView):
    @extend_schema(operation_id="uc_schemas_get", responses={200: s.SchemaOut, **_errors(400, 404)})
    def get(self, request, full_name):
        return Response(s.SchemaOut(_schema(request.user, full_name)).data)

    @extend_schema(operation_id="uc_schemas_update", request=s.SecurableUpdateIn, responses={200: s.SchemaOut, **_errors(400, 403, 404)})
    def patch(self, request, full_name):
        """Change the comment and/or the owner (owner or admin). All or nothing."""
        schema = _schema(request.user, full_name)
        _update(request.user, schema, _valid(s.SecurableUpdateIn, self.body()))
        schema.refresh_from_db()
        return Response(s.SchemaOut(schema).data)

    @extend_schema(operation_id="uc_schemas_delete", request=None, responses={200: s.EmptyOut, **_errors(400, 403, 404)})
    def delete(self, request, full_name):
        """Delete an empty schema (owner or admin)."""
        services.schema_delete(actor=request.user, schema=_schema(request.user, full_name))
        return Response({})


# --- Registered models ----------------------------------------------------------------------
class ModelsView(UCView):
    @extend_schema(
        operation_id="uc_models_list",
        parameters=[
            OpenApiParameter("catalog_name", str, description="Only this catalog's models."),
            OpenApiParameter("schema_name", str, description="Only this schema's models (needs catalog_name)."),
            *PAGE_PARAMS,
        ],
        responses={200: s.ModelListOut, **_errors(400, 404)},
    )
    def get(self, request):
        """Models the caller may see (EXECUTE + USE SCHEMA + USE CATALOG, ownership, or admin)."""
        catalog_name = request.query_params.get("catalog_name")
        schema_name = request.query_params.get("schema_name")
        if schema_name and not catalog_name:
            raise InvalidInput("schema_name needs catalog_name.")
        if schema_name:
            queryset = selectors.models(request.user, selectors.schema_get(request.user, catalog_name, schema_name))
        elif catalog_name:
            catalog = selectors.catalog_get(request.user, catalog_name)
            queryset = selectors.models(request.user).filter(schema__catalog=catalog)
        else:
            queryset = selectors.models(request.user)
        return _page(request, _with_aliases(queryset), "registered_models", s.ModelOut)

    @extend_schema(operation_id="uc_models_create", request=s.ModelCreateIn, responses={200: s.ModelOut, **_errors(400, 403, 404, 409)})
    def post(self, request):
        """Create a model (CREATE MODEL + USE SCHEMA + USE CATALOG); the caller owns it."""
        data = _valid(s.ModelCreateIn, self.body())
        schema = selectors.schema_get(request.user, data["catalog_name"], data["schema_name"])
        model = services.model_create(
            actor=request.user, schema=schema, name=data["name"], description=data.get("comment") or ""
        )
        return Response(s.ModelOut(model).data)


class ModelView(UCView):
    @extend_schema(operation_id="uc_models_get", responses={200: s.ModelOut, **_errors(400, 404)})
    def get(self, request, full_name):
        return Response(s.ModelOut(_model(request.user, full_name)).data)

    @extend_schema(operation_id="uc_models_update", request=s.SecurableUpdateIn, responses={200: s.ModelOut, **_errors(400, 403, 404, 409)})
    def patch(self, request, full_name):
        """Change the comment (owner), rename within the schema (owner + CREATE MODEL) and/or
        transfer ownership (owner). All or nothing."""
        model = _model(request.user, full_name)
        _update(request.user, model, _valid(s.SecurableUpdateIn, self.body()))
        model.refresh_from_db()
        return Response(s.ModelOut(model).data)

    @extend_schema(operation_id="uc_models_delete", request=None, responses={200: s.EmptyOut, **_errors(400, 403, 404)})
    def delete(self, request, full_name):
        """Delete the model and all its versions (owner or admin). Irreversible."""
        services.model_delete(actor=request.user, model=_model(request.user, full_name))
        return Response({})


class VersionsView(UCView):
    @extend_schema(operation_id="uc_versions_list", parameters=PAGE_PARAMS, responses={200: s.VersionListOut, **_errors(400, 404)})
    def get(self, request, full_name):
        """A model's versions, newest first."""
        model = _model(request.user, full_name)
        versions = selectors.model_versions(model).select_related("model__schema__catalog")
        return _page(request, versions, "model_versions", s.VersionOut)


class VersionView(UCView):
    @extend_schema(operation_id="uc_versions_get", responses={200: s.VersionOut, **_errors(400, 404)})
    def get(self, request, full_name, version):
        names.parse_full_name(full_name)
        return Response(s.VersionOut(selectors.version_get(request.user, full_name, version)).data)

    @extend_schema(operation_id="uc_versions_update", request=s.VersionUpdateIn, responses={200: s.VersionOut, **_errors(400, 403, 404)})
    def patch(self, request, full_name, version):
        """Change the version's comment (owner of the model)."""
        names.parse_full_name(full_name)
        obj = selectors.version_get(request.user, full_name, version)
        data = _valid(s.VersionUpdateIn, self.body())
        if "comment" in data:
            services.version_update(actor=request.user, version=obj, description=data["comment"] or "")
        return Response(s.VersionOut(selectors.version_get(request.user, full_name, version)).data)


class VersionLineageView(UCView):
    @extend_schema(operation_id="uc_versions_lineage", responses={200: s.LineageOut, **_errors(400, 404)})
    def get(self, request, full_name, version):
        """Where the version came from (the datasets its run logged, the run, the version it was
        copied from) and the copies made of it, as the caller may see them: a run or version the
        caller may not see is given without its name; copies in models the caller may not see
        are only counted."""
        names.parse_full_name(full_name)
        obj = selectors.version_get(request.user, full_name, version)
        return Response(lineage.version_lineage(user=request.user, version=obj).as_dict())


# --- Grants ---------------------------------------------------------------------------------
def _securable(user, securable_type, full_name):
    kind = (securable_type or "").lower()
    if kind == "catalog":
        return selectors.catalog_get(user, names.validate_name_part(full_name, "catalog name"))
    if kind == "schema":
        return _schema(user, full_name)
    if kind == "registered_model":
        return _model(user, full_name)
    if kind == "experiment":  # MLflow tracking: named by its id (README "How privileges work")
        if not full_name.isdigit() or len(full_name) > 18:
            raise NotFound(f"No Experiment with id={full_name[:40]} exists")
        return runs.experiment_get(user, int(full_name))
    raise InvalidInput(
        f"Unknown securable type {securable_type[:40]!r}: use catalog, schema, registered_model or experiment."
    )


def _assignments(obj):
    """Direct grants, and grants inherited from the catalog/schema above (same principal may
    appear in both lists)."""
    direct, inherited = [], []
    for row in services.grants_on(obj):
        item = {"principal": row["principal"], "principal_type": row["principal_type"], "privileges": row["privileges"]}
        if row["inherited_from"]:
            item["inherited_from_type"], item["inherited_from_name"] = row["inherited_from"].split(" ", 1)
            inherited.append(item)
        else:
            direct.append(item)
    return {"privilege_assignments": direct, "inherited_privilege_assignments": inherited}


class PermissionsView(UCView):
    @extend_schema(operation_id="uc_permissions_get", responses={200: s.PermissionsOut, **_errors(400, 404)})
    def get(self, request, securable_type, full_name):
        """Grants on a catalog, schema, registered_model or experiment (by id) the caller may see."""
        return Response(_assignments(_securable(request.user, securable_type, full_name)))

    @extend_schema(operation_id="uc_permissions_update", request=s.PermissionsUpdateIn, responses={200: s.PermissionsOut, **_errors(400, 403, 404)})
    def patch(self, request, securable_type, full_name):
        """Grant and revoke (owner or admin). Privileges as `USE CATALOG` or `USE_CATALOG`.
        All changes or none."""
        obj = _securable(request.user, securable_type, full_name)
        data = _valid(s.PermissionsUpdateIn, self.body())
        services.grants_change(actor=request.user, obj=obj, changes=data["changes"])
        return Response(_assignments(obj))
