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


def _version_of(model, details=False, **lookup):
    """`details`: tags and aliases as `registry_details` attaches them (one query) instead of
    prefetched (two)."""
    # The MLflow API (`details`) shows no copied_from: not joined there.
    related = ("created_by",) if details else ("created_by", "copied_from__model")
    qs = ModelVersion.objects.select_related(*related).filter(model=model, **lookup)
    obj = (qs if details else qs.prefetch_related("tags", "aliases")).first()
    if obj is not None:
        obj.model = model
        if details:
            registry_details(versions=[obj])
    return obj


def model_version(model, version, *, details=False):
    """Version `version` of a model the caller got through a getter (so already checked)."""
    number = names.validate_version_number(version)
    obj = _version_of(model, details, version=number)
    if obj is None:
        raise NotFound(f"Model Version (name={model.full_name}, version={number}) not found")
    return obj


def model_version_by_alias(model, alias, *, details=False):
    """The version `alias` points to, of a model the caller got through a getter."""
    from .errors import InvalidInput

    obj = _version_of(model, details, aliases__name__iexact=alias or "")
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


TREE_MODELS = 50  # models listed under one schema in the side tree; the schema page lists all


def catalog_tree(user, current=None):
    """[(catalog, [(schema, models, more), …]), …] of what `user` sees. Models are listed only
    under the current schema (`current`: {"catalog", "schema", "model"} names): at most
    TREE_MODELS by name, the current model always among them, `more` when there are others;
    for other schemas `models` is None (the tree loads them when one is opened). Two queries,
    three with a current schema, whatever the number of models."""
    current = current or {}
    cats = list(catalogs(user))
    schs = list(schemas(user).filter(catalog__in=cats))
    open_schema = next(
        (s for s in schs if s.catalog.name == current.get("catalog") and s.name == current.get("schema")), None
    )
    listed = {}
    if open_schema is not None:
        listed[open_schema.pk] = tree_models(user, open_schema, current.get("model"))
    by_catalog = {}
    for s in schs:
        mods, more = listed.get(s.pk, (None, False))
        by_catalog.setdefault(s.catalog_id, []).append((s, mods, more))
    return [(c, by_catalog.get(c.pk, [])) for c in cats]


def tree_models(user, schema, current_model=None):
    """(models, more): the first TREE_MODELS models of `schema` that `user` sees, by name, with
    `current_model` (a name) among them; more: whether there are others. One query."""
    from django.db.models import Case, IntegerField, Value, When

    first = Case(When(name=current_model or "", then=Value(0)), default=Value(1), output_field=IntegerField())
    rows = list(
        models(user, schema).select_related(None).only("id", "name", "full_name", "schema_id")
        .order_by(first, "name")[: TREE_MODELS + 1]
    )
    more = len(rows) > TREE_MODELS
    return sorted(rows[:TREE_MODELS], key=lambda m: m.name), more


def schemas_with_counts(user, catalog):
    return schemas(user, catalog).annotate(model_count=Count("models", distinct=True))


def version_counts(models):
    """{model id: number of versions} for the given models, in one query."""
    rows = ModelVersion.objects.filter(model__in=list(models)).values("model_id").annotate(n=Count("id"))
    return {r["model_id"]: r["n"] for r in rows}


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
    """Models the MLflow API lists: visible, not prompts, with their creator (tags and aliases:
    `registry_details`)."""
    # Not the schema and catalog rows `models()` joins for the pages: MLflow's JSON names the
    # model by full_name, and every joined row is a Python object built per result.
    return models(user).exclude(_is_prompt("pk")).select_related(None).select_related("created_by", *_OWNERS)


def registry_versions(user):
    """Versions the MLflow API lists: of visible models that are not prompts (tags and aliases:
    `registry_details`)."""
    return (
        visible(user, ModelVersion.objects.select_related("model", "created_by"))
        .exclude(_is_prompt("model_id"))
    )


def registry_model_get(user, full_name):
    """`model_get` for the MLflow API: prompts are not found (checked in the same query)."""
    queryset = RegisteredModel.objects.select_related("created_by").annotate(is_prompt=_is_prompt("pk"))
    model = _model_get(user, full_name, queryset)
    if model.is_prompt:
        raise NotFound(f"Registered Model with name={full_name} not found")
    return model


def newest_version(model):
    """A model's newest version (creator loaded), or None: one indexed lookup."""
    version = ModelVersion.objects.select_related("created_by").filter(model=model).order_by("-version").first()
    if version is not None:
        version.model = model
    return version


def latest_versions(models):
    """{model id: its newest version} for many models in one query (`version.model` is the
    given model, the creator loaded; tags and aliases: `registry_details`)."""
    by_id = {m.pk: m for m in models}
    newest = ModelVersion.objects.filter(model=OuterRef("model_id")).order_by("-version").values("pk")[:1]
    rows = (
        ModelVersion.objects.filter(model_id__in=list(by_id))
        .annotate(newest=Subquery(newest))
        .filter(pk=F("newest"))
        .select_related("created_by")
    )
    for v in rows:
        v.model = by_id[v.model_id]
    return {v.model_id: v for v in rows}


def registry_details(models=(), versions=()):
    """Tags and aliases of `models` and `versions` in one query (UNION ALL of the three tables)
    instead of one prefetch per relation and level. Sets, sorted as MLflow shows them:
    `model.mlflow_tags` [(key, value)], `model.mlflow_aliases` [(alias, version number)],
    `version.mlflow_tags` [(key, value)], `version.mlflow_aliases` [alias]."""
    from django.db import connection

    models, versions = [m for m in models], [v for v in versions]
    qn = connection.ops.quote_name
    tag_m, tag_v = qn(ModelTag._meta.db_table), qn(VersionTag._meta.db_table)
    alias, version = qn(Alias._meta.db_table), qn(ModelVersion._meta.db_table)
    parts, params = [], []

    def part(sql, ids):
        parts.append(sql.format(marks=", ".join(["%s"] * len(ids))))
        params.extend(ids)

    model_ids, version_ids = [m.pk for m in models], [v.pk for v in versions]
    if model_ids:
        part(f"SELECT 0, model_id, {qn('key')}, {qn('value')}, NULL FROM {tag_m} WHERE model_id IN ({{marks}})",
             model_ids)
        part(f"SELECT 1, a.model_id, a.name, NULL, v.version FROM {alias} a JOIN {version} v ON v.id = a.version_id "
             f"WHERE a.model_id IN ({{marks}})", model_ids)
    if version_ids:
        part(f"SELECT 2, version_id, {qn('key')}, {qn('value')}, NULL FROM {tag_v} WHERE version_id IN ({{marks}})",
             version_ids)
        part(f"SELECT 3, version_id, name, NULL, NULL FROM {alias} WHERE version_id IN ({{marks}})", version_ids)
    found = {}
    if parts:
        with connection.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(parts), params)
            for kind, owner, name, value, number in cursor.fetchall():
                found.setdefault((kind, owner), []).append((name, value) if kind in (0, 2) else (name, number))
    for m in models:
        m.mlflow_tags = sorted(found.get((0, m.pk), []))
        m.mlflow_aliases = sorted(found.get((1, m.pk), []))
    for v in versions:
        v.mlflow_tags = sorted(found.get((2, v.pk), []))
        v.mlflow_aliases = sorted(name for name, _ in found.get((3, v.pk), []))
    return models, versions
