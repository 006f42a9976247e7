"""Shapes of the Unity Catalog API: small input serializers (types only — names, privileges and
limits are checked by the domain, which names the rule broken) and output serializers (Unity
Catalog's field names; timestamps in epoch milliseconds). Both also document the OpenAPI schema.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


def _text(**kwargs):
    # No trimming: " x" must reach the name rules (and fail there), not be quietly fixed.
    return serializers.CharField(trim_whitespace=False, allow_blank=True, **kwargs)


# --- Inputs ---------------------------------------------------------------------------------
class CatalogCreateIn(serializers.Serializer):
    name = _text()
    comment = _text(required=False, allow_null=True)


class SecurableUpdateIn(serializers.Serializer):
    comment = _text(required=False, allow_null=True, help_text="New description (Markdown).")
    owner = _text(required=False, help_text="New owner: a user or group name (`user:x` / `group:x` if both exist).")
    new_name = _text(required=False)


class SchemaCreateIn(serializers.Serializer):
    name = _text()
    catalog_name = _text()
    comment = _text(required=False, allow_null=True)


class ModelCreateIn(serializers.Serializer):
    name = _text()
    catalog_name = _text()
    schema_name = _text()
    comment = _text(required=False, allow_null=True)


class VersionUpdateIn(serializers.Serializer):
    comment = _text(required=False, allow_null=True)


class PermissionsChangeItemIn(serializers.Serializer):
    principal = _text()
    add = serializers.ListField(child=_text(), default=list)
    remove = serializers.ListField(child=_text(), default=list)


class PermissionsUpdateIn(serializers.Serializer):
    changes = serializers.ListField(child=PermissionsChangeItemIn(), allow_empty=False)


# --- Outputs --------------------------------------------------------------------------------
@extend_schema_field(OpenApiTypes.INT64)
class EpochMillisField(serializers.Field):
    def __init__(self, **kwargs):
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, value):
        return int(value.timestamp() * 1000) if value else None


def _username(source):
    return serializers.CharField(source=f"{source}.username", allow_null=True, read_only=True)


class CatalogOut(serializers.Serializer):
    name = serializers.CharField()
    comment = serializers.CharField(source="description")
    owner = serializers.CharField(source="owner_name", help_text="A user or group name.")
    created_at = EpochMillisField()
    updated_at = EpochMillisField()
    created_by = _username("created_by")


class SchemaOut(CatalogOut):
    catalog_name = serializers.CharField(source="catalog.name")
    full_name = serializers.CharField()


class AliasOut(serializers.Serializer):
    alias_name = serializers.CharField(source="name")
    version_num = serializers.IntegerField(source="version.version")


class ModelOut(CatalogOut):
    catalog_name = serializers.CharField(source="schema.catalog.name")
    schema_name = serializers.CharField(source="schema.name")
    full_name = serializers.CharField()
    aliases = AliasOut(many=True, read_only=True)


class VersionOut(serializers.Serializer):
    model_name = serializers.CharField(source="model.name")
    catalog_name = serializers.CharField(source="model.schema.catalog.name")
    schema_name = serializers.CharField(source="model.schema.name")
    version = serializers.IntegerField()
    status = serializers.CharField(help_text="PENDING_REGISTRATION, READY or FAILED_REGISTRATION.")
    status_message = serializers.CharField()
    source = serializers.CharField()
    run_id = serializers.CharField()
    comment = serializers.CharField(source="description")
    aliases = AliasOut(many=True, read_only=True)
    created_at = EpochMillisField()
    updated_at = EpochMillisField()
    created_by = _username("created_by")


class CatalogListOut(serializers.Serializer):
    catalogs = CatalogOut(many=True)
    next_page_token = serializers.CharField(required=False, help_text="Absent on the last page.")


class SchemaListOut(serializers.Serializer):
    schemas = SchemaOut(many=True)
    next_page_token = serializers.CharField(required=False, help_text="Absent on the last page.")


class ModelListOut(serializers.Serializer):
    registered_models = ModelOut(many=True)
    next_page_token = serializers.CharField(required=False, help_text="Absent on the last page.")


class VersionListOut(serializers.Serializer):
    model_versions = VersionOut(many=True)
    next_page_token = serializers.CharField(required=False, help_text="Absent on the last page.")


class PrivilegeAssignmentOut(serializers.Serializer):
    principal = serializers.CharField()
    principal_type = serializers.ChoiceField(choices=["user", "group"])
    privileges = serializers.ListField(child=serializers.CharField())


class InheritedPrivilegeAssignmentOut(PrivilegeAssignmentOut):
    inherited_from_type = serializers.ChoiceField(choices=["catalog", "schema"])
    inherited_from_name = serializers.CharField()


class PermissionsOut(serializers.Serializer):
    privilege_assignments = PrivilegeAssignmentOut(many=True, help_text="Grants made on this object itself.")
    inherited_privilege_assignments = InheritedPrivilegeAssignmentOut(
        many=True, help_text="Grants on the catalog or schema above it, which apply here too."
    )


class EmptyOut(serializers.Serializer):
    pass


class ErrorOut(serializers.Serializer):
    error_code = serializers.CharField(help_text="NOT_FOUND, ALREADY_EXISTS, INVALID_ARGUMENT, PERMISSION_DENIED, UNAUTHENTICATED…")
    message = serializers.CharField()


# --- Lineage (registry/lineage.py builds the data; these only describe it for OpenAPI) --------
class LineageDatasetOut(serializers.Serializer):
    name = serializers.CharField()
    digest = serializers.CharField()
    source_type = serializers.CharField(help_text="MLflow's dataset source type: delta_table, http, local, hugging_face…")
    source = serializers.CharField(help_text="The source as MLflow logged it (often JSON, e.g. {\"uri\": \"…\"}).")
    context = serializers.CharField(help_text="The mlflow.data.context tag: training, eval… (may be empty).")


class LineageRunOut(serializers.Serializer):
    run_id = serializers.CharField()
    visible = serializers.BooleanField(help_text="False: the caller may not see the run; only its id is given.")
    run_name = serializers.CharField(required=False)
    status = serializers.CharField(required=False)
    experiment_id = serializers.CharField(required=False)
    experiment_name = serializers.CharField(required=False)


class LineageVersionOut(serializers.Serializer):
    visible = serializers.BooleanField(help_text="False: a version the caller may not see; nothing else is given.")
    full_name = serializers.CharField(required=False, help_text="catalog.schema.model")
    version = serializers.IntegerField(required=False)
    status = serializers.CharField(required=False)


class LineageOut(serializers.Serializer):
    model_version = LineageVersionOut()
    datasets = LineageDatasetOut(many=True, help_text="What the version's run logged as inputs (mlflow.log_input).")
    run = LineageRunOut(allow_null=True, help_text="The run the version was registered from, or null.")
    copied_from = LineageVersionOut(allow_null=True, help_text="The version this one was copied from, or null.")
    copies = LineageVersionOut(many=True, help_text="Copies of this version the caller may see.")
    hidden_copies = serializers.IntegerField(help_text="Copies in models the caller may not see (counted, never named).")
