"""Every read, permission-filtered in the database. Getters raise NotFound for what the user
may not see (so names do not leak) and return the object annotated with the user's
capabilities (`permissions.capabilities(user, obj)` then costs no query)."""

from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, Subquery

from . import names
from .errors import NotFound
from .models import Alias, AuditEvent, Catalog, ModelTag, ModelVersion, RegisteredModel, Schema, VersionTag
from .permissions import load_capabilities, visible

_OWNERS = ("owner_user", "owner_group")


def catalogs(user):
    return visible(user, Catalog.objects.select_related(*_OWNERS)).order_by("name")


def schemas(user, catalog=None):
    qs = visible(user, Schema.objects.select_related("catalog", *_OWNERS))
    if catalog is not None:
        qs = qs.filter(catalog=catalog)
    return qs.order_by("catalog__name", "name")


def models(user, schema=None):
    qs = visible(user, RegisteredModel.objects.select_related("schema__catalog", *_OWNERS))
    if schema is not None:
        qs = qs.filter(schema=schema)
    return qs.order_by("full_name")


def catalog_get(user, name):
    name = (name or "").lower()
    obj = Catalog.objects.select_related(*_OWNERS).filter(name=name).first()
    if obj is None or not load_capabilities(user, obj).cap_use_catalog:
        raise NotFound(f"Catalog '{name}' does not exist.")
    return obj


def schema_get(user, catalog_name, schema_name):
    obj = Schema.objects.select_related("catalog", *_OWNERS).filter(
        catalog__name=(catalog_name or "").lower(), name=(schema_name or "").lower()
    ).first()
    if obj is None or not (load_capabilities(user, obj).cap_use_catalog and obj.cap_use_schema):
        raise NotFound(f"Schema '{catalog_name}.{schema_name}' does not exist.")
    return obj


def _model_get(user, full_name, queryset):
    full_name = full_name or ""
    obj = queryset.select_related("schema__catalog", *_OWNERS).filter(full_name=full_name.lower()).first()
    if obj is not None:
        load_capabilities(user, obj)
    if obj is None or not (obj.cap_use_catalog and obj.cap_use_schema and obj.cap_execute):
        raise NotFound(f"Registered Model with name={full_name} not found")
    return obj


def model_get(user, full_name):
    """By `catalog.schema.model` (any case). Invalid names are simply not found."""
    return _model_get(user, full_name, RegisteredModel.objects.all())


def _version_of(model, **lookup):
    obj = (
        ModelVersion.objects.select_related("created_by", "copied_from__model")
        .prefetch_related("tags", "aliases")
        .filter(model=model, **lookup)
        .first()
    )
    if obj is not None:
        obj.model = model
    return obj


def model_version(model, version):
    """Version `version` of a model the caller got through a getter (so already checked)."""
    number = names.validate_version_number(version)
    obj = _version_of(model, version=number)
    if obj is None:
        raise NotFound(f"Model Version (name={model.full_name}, version={number}) not found")
    return obj


def model_version_by_alias(model, alias):
    """The version `alias` points to, of a model the caller got through a getter."""
    from .errors import InvalidInput

    obj = _version_of(model, aliases__name__iexact=alias or "")
    if obj is None:
        raise InvalidInput(f"Registered model alias {alias} not found.")
    return obj


def version_get(user, full_name, version):
    """The version with its model (annotated with capabilities) attached."""
    return model_version(model_get(user, full_name), version)


def version_by_alias(user, full_name, alias):
    return model_version_by_alias(model_get(user, full_name), alias)


def model_versions(model):
    """A model's versions, newest first, with tags, aliases and creator in a constant number
    of queries whatever the count (callers paginate)."""
    return (
        ModelVersion.objects.filter(model=model)
        .select_related("created_by")
        .prefetch_related(
            Prefetch("aliases", queryset=Alias.objects.order_by("name")),
            Prefetch("tags", queryset=VersionTag.objects.order_by("key")),
        )
        .order_by("-version")
    )


def model_aliases(model):
    return Alias.objects.filter(model=model).select_related("version").order_by("name")


def model_tags(model):
    return ModelTag.objects.filter(model=model).order_by("key")


def model_activity(model, limit=100):
    return AuditEvent.objects.filter(model=model).order_by("-created_at", "-id")[:limit]


def catalog_tree(user):
    """[(catalog, [(schema, [model, …]), …]), …] of what `user` sees, in three queries."""
    cats = list(catalogs(user))
    schs = list(schemas(user).filter(catalog__in=cats))
    mods = list(models(user).filter(schema__in=schs).select_related(None).only("id", "name", "full_name", "schema_id"))
    by_schema = {}
    for m in mods:
        by_schema.setdefault(m.schema_id, []).append(m)
    by_catalog = {}
    for s in schs:
        by_catalog.setdefault(s.catalog_id, []).append((s, by_schema.get(s.pk, [])))
    return [(c, by_catalog.get(c.pk, [])) for c in cats]


def schemas_with_counts(user, catalog):
    return schemas(user, catalog).annotate(model_count=Count("models", distinct=True))


def models_with_counts(user, schema):
    return models(user, schema).annotate(version_count=Count("versions", distinct=True))


def search(user, text="", *, status=None, tag=None, alias=None, creator=None, catalog=None, schema=None):
    """Models and versions matching free text (name, tag, alias, creator) with facets.
    Returns (models_qs, versions_qs), both permission-filtered."""
    text = (text or "").strip()
    model_qs = models(user)
    version_qs = visible(user, ModelVersion.objects.select_related("model", "created_by")).prefetch_related("aliases")
    if text:
        model_qs = model_qs.filter(
            Q(full_name__icontains=text) | Q(description__icontains=text)
            | Q(tags__key__icontains=text) | Q(tags__value__icontains=text) | Q(aliases__name__icontains=text)
        ).distinct()
        version_qs = version_qs.filter(
            Q(model__full_name__icontains=text) | Q(tags__key__icontains=text) | Q(tags__value__icontains=text)
            | Q(aliases__name__icontains=text) | Q(created_by__username__icontains=text) | Q(run_id__icontains=text)
        ).distinct()
    if status:
        version_qs = version_qs.filter(status=status)
    if tag:
        key, _, value = tag.partition("=")
        model_qs = model_qs.filter(tags__key=key, **({"tags__value": value} if value else {})).distinct()
        version_qs = version_qs.filter(tags__key=key, **({"tags__value": value} if value else {})).distinct()
    if alias:
        model_qs = model_qs.filter(aliases__name__iexact=alias).distinct()
        version_qs = version_qs.filter(aliases__name__iexact=alias).distinct()
    if creator:
        model_qs = model_qs.filter(created_by__username=creator)
        version_qs = version_qs.filter(created_by__username=creator)
    if catalog:
        model_qs = model_qs.filter(schema__catalog__name=catalog.lower())
        version_qs = version_qs.filter(model__schema__catalog__name=catalog.lower())
    if schema:
        model_qs = model_qs.filter(schema__name=schema.lower())
        version_qs = version_qs.filter(model__schema__name=schema.lower())
    return model_qs, version_qs.order_by("-updated_at", "-version")


# --- MLflow API (issue 4) ---------------------------------------------------------------------
# Prompts are registered models tagged `mlflow.prompt.is_prompt = true`: not models, so the MLflow
# API's model and version reads never show them (as MLflow's own server hides them).
def _is_prompt(model_ref):
    from .search import PROMPT_TAG

    return Exists(ModelTag.objects.filter(model=OuterRef(model_ref), key=PROMPT_TAG, value__iexact="true"))


def registry_models(user):
    """Models the MLflow API lists: visible, not prompts; tags, aliases and creator loaded."""
    return (
        models(user)
        .exclude(_is_prompt("pk"))
        .select_related("created_by")
        .prefetch_related("tags", Prefetch("aliases", queryset=Alias.objects.select_related("version")))
    )


def registry_versions(user):
    """Versions the MLflow API lists: of visible models that are not prompts."""
    return (
        visible(user, ModelVersion.objects.select_related("model", "created_by"))
        .exclude(_is_prompt("model_id"))
        .prefetch_related("tags", "aliases")
    )


def registry_model_get(user, full_name):
    """`model_get` for the MLflow API: prompts are not found (checked in the same query)."""
    model = _model_get(user, full_name, RegisteredModel.objects.annotate(is_prompt=_is_prompt("pk")))
    if model.is_prompt:
        raise NotFound(f"Registered Model with name={full_name} not found")
    return model


def registry_model_details(model, *, reload=True):
    """Load tags, aliases and creator onto a model the caller already got through a selector
    (no second permission query); `reload=False` when it was loaded by this request and not
    changed since."""
    from django.db.models import prefetch_related_objects

    if reload:
        model.refresh_from_db(fields=["name", "full_name", "description", "updated_at"])
    prefetch_related_objects(
        [model], "tags", Prefetch("aliases", queryset=Alias.objects.select_related("version")), "created_by"
    )
    return model


def latest_versions(model_ids):
    """{model id: its newest version} for many models in one query (tags and aliases loaded)."""
    newest = ModelVersion.objects.filter(model=OuterRef("model_id")).order_by("-version").values("pk")[:1]
    rows = (
        ModelVersion.objects.filter(model_id__in=list(model_ids))
        .annotate(newest=Subquery(newest))
        .filter(pk=F("newest"))
        .select_related("model", "created_by")
        .prefetch_related("tags", "aliases")
    )
    return {v.model_id: v for v in rows}
