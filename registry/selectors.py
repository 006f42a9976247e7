"""Every read, permission-filtered in the database. Getters raise NotFound for what the user
may not see (so names do not leak) and return the object annotated with the user's
capabilities (`permissions.capabilities(user, obj)` then costs no query)."""

from functools import partial

import orjson
from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, Subquery, TextField, Value
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.functions import Cast, Coalesce, Upper

from . import names
from .errors import NotFound
from .models import Alias, AuditEvent, Catalog, ModelTag, ModelVersion, RegisteredModel, Schema, VersionTag
from .db import EpochMs, JSONBuildArray, JSONBuildObject, JSONList, compiled_objects, compiled_rows, constant
from .permissions import compiled_for, visible, visible_one

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


# Getters: the row and the user's capabilities on it in one query (`permissions.visible_one`);
# Django took longer to assemble it than the database takes to run it, so its SQL is compiled once.
def catalog_get(user, name):
    name = (name or "").lower()
    obj = visible_one(user, ("catalog-get",), lambda: Catalog.objects.select_related(*_OWNERS), name=name)
    if obj is None:
        raise NotFound(f"Catalog '{name}' does not exist.")
    return obj


def schema_get(user, catalog_name, schema_name):
    obj = visible_one(user, ("schema-get",), lambda: Schema.objects.select_related("catalog", *_OWNERS),
                      catalog__name=(catalog_name or "").lower(), name=(schema_name or "").lower())
    if obj is None:
        raise NotFound(f"Schema '{catalog_name}.{schema_name}' does not exist.")
    return obj


def _model_get(user, full_name, key, queryset):
    """`key` names the shape of `queryset` (a model queryset, maybe annotated)."""
    full_name = full_name or ""
    obj = visible_one(user, ("model-get", key), lambda: queryset().select_related("schema__catalog", *_OWNERS),
                      full_name=full_name.lower())
    if obj is None:
        raise NotFound(f"Registered Model with name={full_name} not found")
    return obj


def model_get(user, full_name):
    """By `catalog.schema.model` (any case). Invalid names are simply not found."""
    return _model_get(user, full_name, "model", RegisteredModel.objects.all)


def _version_of(model, details, **lookup):
    """`details`: with its creator, its source's model, its tags and aliases (what the pages and
    the UC API show); without, the version's own row (one statement, not three)."""
    queryset = ModelVersion.objects.filter(model=model, **lookup)
    if details:
        queryset = queryset.select_related("created_by", "copied_from__model").prefetch_related("tags", "aliases")
    obj = queryset.first()
    if obj is not None:
        obj.model = model
    return obj


def model_version(model, version, *, details=True):
    """Version `version` of a model the caller got through a getter (so already checked)."""
    number = names.validate_version_number(version)
    obj = _version_of(model, details, version=number)
    if obj is None:
        raise NotFound(f"Model Version (name={model.full_name}, version={number}) not found")
    return obj


def model_version_by_alias(model, alias, *, details=True):
    """The version `alias` points to, of a model the caller got through a getter."""
    from .errors import InvalidInput

    obj = _version_of(model, details, pk=Subquery(Alias.objects.named(alias or "").filter(model=model).values("version_id")[:1]))
    if obj is None:
        raise InvalidInput(f"Registered model alias {alias} not found.")
    return obj


def version_get(user, full_name, version, *, details=True):
    """The version with its model (annotated with capabilities) attached."""
    return model_version(model_get(user, full_name), version, details=details)


def version_by_alias(user, full_name, alias, *, details=True):
    return model_version_by_alias(model_get(user, full_name), alias, details=details)


def _newest_first(model):
    return ModelVersion.objects.filter(model=model).select_related("created_by").order_by("-version")


def model_versions(model):
    """A model's versions, newest first, with tags, aliases and creator in a constant number
    of queries whatever the count (callers paginate)."""
    return _newest_first(model).prefetch_related(
        Prefetch("aliases", queryset=Alias.objects.order_by("name")),
        Prefetch("tags", queryset=VersionTag.objects.order_by("key")),
    )


def model_version_list(model, page_size):
    """A model's versions for its page, newest first, with creator and alias names
    (`with_alias_names`), for Django's `Paginator` by pages of `page_size`: its count and each
    page one statement whatever the number of versions, their SQL compiled once (Django took
    ~1.5 ms to assemble the two for every model page)."""
    return _VersionPages(model.pk, page_size)


class _VersionPages:
    """What `Paginator` asks of a list: its length (`count`) and a slice of at most a page."""

    def __init__(self, model, page_size):
        self.model, self.page_size = model, page_size

    def count(self):
        rows = compiled_rows(("model-version-count",), _version_count, model=self.model)
        return rows[0]["n"] if rows else 0

    def __getitem__(self, item):
        start, stop, step = item.indices(2**62) if isinstance(item, slice) else (None, None, None)
        if start is None or step != 1 or stop - start > self.page_size:
            raise TypeError("a model's versions are read a page at a time")
        found = compiled_objects(("model-version-page", self.page_size), partial(_version_page, size=self.page_size),
                                 model=self.model, offset=start) if stop > start else []
        return found[: stop - start]


def _version_count(model):
    return ModelVersion.objects.filter(model_id=model).values("model_id").annotate(n=Count("id"))


def _version_page(model, size):
    return with_alias_names(_newest_first(model))[:size]


def with_alias_names(versions):
    """Versions with their alias names as one JSON column, to read through `alias_names`.
    Pages list them this way, not by prefetching: Django builds a queryset per row for each
    prefetched relation (8 of the 13 ms a page of 50 versions took to load)."""
    return versions.annotate(alias_names_json=_json_list(*_VERSION_ALIASES))


def alias_names(versions):
    """The versions of a `with_alias_names` queryset (or a page's slice of it), as a list,
    each with `alias_names` (sorted)."""
    out = list(versions)
    for version in out:
        version.alias_names = _entries(version.alias_names_json, single=True)
    return out


def model_aliases(model):
    """`model`'s aliases by name, each with its version. Its SQL compiled once, as the model
    page's other reads are (Django took ~0.6 ms to assemble this query for every page)."""
    return compiled_objects(("model-aliases",), _model_aliases, model=model.pk)


def _model_aliases(model):
    return Alias.objects.filter(model_id=model).select_related("version").order_by("name")


def model_tags(model):
    """`model`'s tags by key; compiled once (`model_aliases`)."""
    return compiled_objects(("model-tags",), _model_tags, model=model.pk)


def _model_tags(model):
    return ModelTag.objects.filter(model_id=model).order_by("key")


def model_activity(model, limit=100):
    return AuditEvent.objects.filter(model=model).order_by("-created_at", "-id")[:limit]


TREE_MODELS = 50  # models listed under one schema in the side tree; the schema page lists all


def catalog_tree(user, current=None):
    """[(catalog, [(schema, models, more), …]), …] of what `user` sees, each a row {id, name}
    (a schema's with its catalog_id). Models are listed only under the current schema
    (`current`: {"catalog", "schema", "model"} names): at most TREE_MODELS by name, the current
    model always among them, `more` when there are others; for other schemas `models` is None
    (the tree loads them when one is opened). Two queries, three with a current schema, whatever
    the number of models; their SQL compiled once (`compiled_for`): every page shows the tree,
    and Django took longer to assemble its three permission-filtered queries (~3 ms a page) than
    PostgreSQL to run them."""
    current = current or {}
    cats = compiled_for(user, ("tree-catalogs",), _tree_catalogs)
    names_of = {c["id"]: c["name"] for c in cats}
    # A schema the user sees is in a catalog he sees (USE CATALOG): the test only keeps the tree
    # consistent should the two statements' snapshots differ.
    schs = [s for s in compiled_for(user, ("tree-schemas",), _tree_schemas) if s["catalog_id"] in names_of]
    open_schema = next((s for s in schs if names_of[s["catalog_id"]] == current.get("catalog")
                        and s["name"] == current.get("schema")), None)
    listed = {}
    if open_schema is not None:
        listed[open_schema["id"]] = tree_models(user, open_schema["id"], current.get("model"))
    by_catalog = {}
    for s in schs:
        mods, more = listed.get(s["id"], (None, False))
        by_catalog.setdefault(s["catalog_id"], []).append((s, mods, more))
    return [(c, by_catalog.get(c["id"], [])) for c in cats]


def _tree_catalogs(user):
    return visible(user, Catalog.objects.all()).order_by("name").values("id", "name")


def _tree_schemas(user):
    return visible(user, Schema.objects.all()).order_by("catalog__name", "name").values("id", "name", "catalog_id")


def tree_models(user, schema, current_model=None):
    """(models, more): the first TREE_MODELS models (rows {id, name}) of the schema with id
    `schema` that `user` sees, by name, with `current_model` (a name) among them; more: whether
    there are others. One query, compiled once."""
    rows = compiled_for(user, ("tree-models",), _tree_models, schema=schema, current=current_model or "")
    more = len(rows) > TREE_MODELS
    return sorted(rows[:TREE_MODELS], key=lambda m: m["name"]), more


def _tree_models(user, schema, current):
    from django.db.models import Case, IntegerField, When

    first = Case(When(name=current, then=Value(0)), default=Value(1), output_field=IntegerField())
    return visible(user, RegisteredModel.objects.filter(schema_id=schema)).order_by(first, "name").values(
        "id", "name")[: TREE_MODELS + 1]


def schemas_with_counts(user, catalog):
    """The visible schemas of `catalog`, each with the number of its models `user` may see: a
    hidden model is not counted (a count would tell that it exists)."""
    seen = visible(user, RegisteredModel.objects.all()).values("pk")
    return schemas(user, catalog).annotate(model_count=Count("models", filter=Q(models__in=seen), distinct=True))


def version_counts(models):
    """{model id: number of versions} for the given models, in one query."""
    rows = ModelVersion.objects.filter(model__in=list(models)).values("model_id").annotate(n=Count("id"))
    return {r["model_id"]: r["n"] for r in rows}


def search(user, text="", *, status=None, tag=None, alias=None, creator=None, catalog=None, schema=None):
    """Models and versions matching free text (name, tag, alias, creator) with facets.
    Returns (models_qs, versions_qs), both permission-filtered."""
    text = (text or "").strip()
    model_qs = models(user)
    version_qs = with_alias_names(visible(user, ModelVersion.objects.select_related("model", "created_by")))
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
        model_qs = model_qs.filter(Exists(Alias.objects.named(alias).filter(model=OuterRef("pk"))))
        version_qs = version_qs.filter(Exists(Alias.objects.named(alias).filter(version=OuterRef("pk"))))
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
# The key and value are written into the SQL (`db.constant`): as parameters, PostgreSQL's generic
# plan took `key = $1` to match as many tags as a common key does, and every list built the
# anti-join's hash from all model tags (1,048 rows read at 1,048 models, 0.10 ms a search); with
# the key known, it reads only that key's rows from the (key, value) index.
def _prompt_tags():
    from .search import PROMPT_TAG

    return ModelTag.objects.filter(key=constant(PROMPT_TAG)).alias(upper_value=Upper("value")).filter(
        upper_value=constant("TRUE"))


def _is_prompt(model_ref):
    """Whether the model `model_ref` is a prompt (one index probe: for a statement finding one model)."""
    return Exists(_prompt_tags().filter(model=OuterRef(model_ref)))


def _not_prompt(model_field):
    """A filter keeping the rows whose model `model_field` is not a prompt, for a statement listing
    many: the prompts' ids are read once and hashed, where `~_is_prompt` probed the tags once per
    row (the tag search over 1,048 models: 0.52 → 0.43 ms in PostgreSQL)."""
    return ~Q(**{f"{model_field}__in": _prompt_tags().values("model_id")})


# The MLflow API serialises rows, dicts of the columns its JSON shows (`MODEL_COLUMNS`,
# `VERSION_COLUMNS`), not model instances: a model with its newest version, their creators, tags
# and aliases comes back as one row of one query. Timestamps come as epoch milliseconds computed
# by the database (`created_ms`, `updated_ms`); tags and aliases as JSON arrays (`db.JSONList`,
# one subquery column each). The single-object reads (get a model, a version, a version by alias)
# run SQL compiled once (`db.compiled_rows`): Django took longer to assemble their permission
# filter than PostgreSQL takes to run it. A read that finds no row falls back to the instance
# getters, which raise the precise error (no such model, version or alias).
MODEL_COLUMNS = ("id", "full_name", "description")
VERSION_COLUMNS = ("id", "model_id", "version", "status", "status_message", "description", "source", "run_id",
                   "run_link")


def _name_of(table, column, field):
    return Subquery(table.objects.filter(pk=OuterRef(field)).values(column))


# MLflow's `user_id`: the creator's username (a model whose creator is gone: its owner's name),
# as scalar subqueries rather than joins, so that PostgreSQL looks them up for the rows of the
# page only, after sorting and LIMIT (joined, they were looked up for all 1,048 visible models
# of a page of 20).
_USER_ID = {
    RegisteredModel: Coalesce(_name_of(get_user_model(), "username", "created_by_id"),
                              _name_of(get_user_model(), "username", "owner_user_id"),
                              _name_of(Group, "name", "owner_group_id"), Value("")),
    ModelVersion: Coalesce(_name_of(get_user_model(), "username", "created_by_id"), Value("")),
}
# An alias's version number, looked up by the version's primary key: as a join, PostgreSQL
# hashed every version of the table for each model of a search page once the tables had
# statistics (a 100-model page: 1.2 -> 4.5 ms at 200 versions).
_ALIAS_VERSION_NUMBER = Subquery(ModelVersion.objects.filter(pk=OuterRef("version_id")).order_by().values("version")[:1])
# A version's aliases matched by their model as well as their version (an alias is always of its
# version's model): while the alias table fits in a page or two, PostgreSQL priced scanning it
# whole once per listed version below probing the version index (2.25 against 2.36), ~0.01 ms a
# version (a model's 4 versions by name: 0.07 of the statement's 0.39 ms); with the model's test
# too the scan is priced higher and the index is probed.
_VERSION_ALIASES = (Alias, {"version": "pk", "model": "model_id"}, ("name",))
_DETAILS = {  # what each kind of row lists: name → (table, {its field: the outer row's}, columns of each entry)
    RegisteredModel: {"tags": (ModelTag, {"model": "pk"}, ("key", "value")),
                      "aliases": (Alias, {"model": "pk"}, ("name", _ALIAS_VERSION_NUMBER))},
    ModelVersion: {"tags": (VersionTag, {"version": "pk"}, ("key", "value")), "aliases": _VERSION_ALIASES},
}


def _json_list(table, match, columns, nested=False):
    """The `columns` of `table`'s rows that belong to the outer row (`match`: {their field: the
    outer row's field}), as one JSON array (NULL when there are none); `nested`: see `JSONList`."""
    rows = table.objects.filter(**{field: OuterRef(outer) for field, outer in match.items()})
    return Subquery(rows.order_by().values(*match).annotate(
        entries=JSONList(JSONBuildArray(*columns), nested=nested)).values("entries"))


def _columns(cls, names, nested=False, lists=None):
    """values() arguments for rows of `cls`: `names`, the two timestamps in epoch ms and the
    JSON lists of `_DETAILS` (`lists`: only those; `nested`: inside a JSON object); for a model,
    its newest version too."""
    more = {f"{t}_ms": EpochMs(f"{t}_at") for t in ("created", "updated")} | {"user_id": _USER_ID[cls]}
    for name, (table, match, columns) in _DETAILS[cls].items():
        if lists is None or name in lists:
            more[f"{name}_json"] = _json_list(table, match, columns, nested)
    if cls is RegisteredModel:
        more["latest_json"] = _latest_json()
    return list(names), more


def _latest_json():
    """The model's newest version as one JSON object of a version row's columns (`_columns`),
    NULL when it has none: one step back along the (model, version) index per model. (A join
    on the newest version made PostgreSQL hash all 100,000 versions for a page of models.)
    Without its aliases: they are the model's aliases on its number (`_finish`), which the row
    has already; looking them up again cost 7 µs per model (0.7 ms of the 3.0 ms statement for
    a 100-model page at 100,000 versions)."""
    columns, more = _columns(ModelVersion, VERSION_COLUMNS, nested=True, lists=("tags",))
    fields = {c: F(c) for c in columns} | more
    return Subquery(ModelVersion.objects.filter(model=OuterRef("pk")).order_by("-version").values(
        latest=Cast(JSONBuildObject(**fields), TextField()))[:1])


def _values(queryset, names, **more):
    columns, computed = _columns(queryset.model, names)
    return queryset.values(*columns, **computed, **more)


def _entries(raw, single):
    """A `_json_list` column as a sorted list: its entries, or (`single`) their one value.
    Text, or already a list where it came nested in the newest version's JSON object."""
    entries = (orjson.loads(raw) if isinstance(raw, str) else raw) or []
    if single:
        entries = [e[0] for e in entries]
    if len(entries) > 1:
        entries.sort()
    return entries


def _finish(row, cls):
    """A row of `_columns` → its `tags` [[key, value]] and `aliases` (versions: [alias]; models:
    [[alias, version number]]), sorted as MLflow shows them, in place of the JSON lists; a
    model's newest version (`latest`, None without versions) finished likewise."""
    for name, single in _LISTS[cls]:
        if name + "_json" in row:
            row[name] = _entries(row.pop(name + "_json"), single)
    if cls is RegisteredModel:
        latest = row.pop("latest_json")
        if latest is not None:
            latest = _finish(orjson.loads(latest), ModelVersion)
            latest["name"] = row["full_name"]
            latest["aliases"] = [name for name, number in row["aliases"] if number == latest["version"]]
        row["latest"] = latest
    return row


_LISTS = {cls: [(name, len(columns) == 1) for name, (_, _, columns) in lists.items()] for cls, lists in _DETAILS.items()}


def _mlflow_versions(versions):
    return _values(versions, VERSION_COLUMNS, name=F("model__full_name"))


def registry_models(user, *, docs_after_limit=False):
    """Models the MLflow API lists (visible, not prompts), for `search`: their `id` and kept
    `doc_json` (`docs.current`, read after the LIMIT with `docs_after_limit`: see
    `registry_model_search`), which `docs.listed` makes a page of."""
    from . import docs

    return visible(user, RegisteredModel.objects.filter(_not_prompt("pk"))).values(
        "id", doc_json=docs.current(after_limit=docs_after_limit))


def registry_model_search(user, *, filter_string, order, page_token, size):
    """`registered-models/search` as the page's docs (`docs.listed`): (docs, next page token or
    None). A filtered search reads the docs after its sort and LIMIT (`docs.current`): the
    models a filter keeps can be many more than a page. Unfiltered, the page walks the models
    in order and joins each one's doc as it goes (cheaper a row: a first page of 50 models'
    statement 0.651 ms joined, 0.704 read after)."""
    from . import docs, search

    clauses = search.parse_filter(filter_string)
    rows, token = search.compiled_search(
        ("mlflow-models", bool(clauses)), partial(registry_models, docs_after_limit=bool(clauses)),
        search.MODEL_GRAMMAR, user=user, filter_string=filter_string, order=order, page_token=page_token, size=size,
        clauses=clauses, tuples=True)
    return docs.listed(rows), token


def registry_models_query(queryset, **more):
    """The models of `queryset` as `MODEL_COLUMNS` rows (and `more` columns), which
    `registry_model_rows` completes."""
    return _values(queryset, MODEL_COLUMNS, **more)


def registry_models_by_id(ids):
    """The models `ids` as `registry_model_rows` makes them (no permission filter: for ids a
    permission-filtered query found)."""
    return registry_model_rows(registry_models_query(RegisteredModel.objects.filter(pk__in=ids)))


def registry_model_rows(rows):
    """Rows of `registry_models` (or of any model `_values`) with their newest version as
    `latest`, tags and aliases."""
    return [_finish(row, RegisteredModel) for row in rows]


def registry_version_rows(rows):
    """Rows of `registry_versions` (or of any `_mlflow_versions`) with their tags and aliases."""
    return [_finish(row, ModelVersion) for row in rows]


def registry_versions(user):
    """Versions the MLflow API lists (of visible models that are not prompts), as rows; tags and
    aliases: `registry_version_rows`."""
    return _mlflow_versions(_visible_versions(user))


def _visible_versions(user):
    return visible(user, ModelVersion.objects.filter(_not_prompt("model_id")))


def registry_model_row(user, full_name, *, prompts=False):
    """The model named `full_name` as the MLflow API shows it (`registry_model_rows`), in one
    query; NotFound when the user may not see it (or, unless `prompts`, when it is a prompt)."""
    return registry_model_rows(_model_named(user, full_name, prompts, "mlflow-model", registry_models_query))[0]


def registry_model_doc(user, full_name, *, prompts=False):
    """`registry_model_row`'s model as `docs.listed` gives it: its kept doc, or computed afresh."""
    from . import docs

    found = docs.listed([(row["id"], row["doc_json"]) for row in _model_named(
        user, full_name, prompts, "mlflow-model-doc", lambda models: models.values("id", doc_json=docs.current()))])
    if not found:  # deleted between its row's statement and its details'
        raise NotFound(f"Registered Model with name={full_name} not found")
    return found[0]


def _model_named(user, full_name, prompts, key, columns):
    def build(user, name):
        models = visible(user, RegisteredModel.objects.filter(full_name=name))
        return columns(models if prompts else models.exclude(_is_prompt("pk")))

    name = (full_name or "").lower()
    rows = compiled_for(user, (key, prompts), build, one=True, name=name)
    if not rows:
        (model_get if prompts else registry_model_get)(user, full_name)  # raises the precise error
        raise NotFound(f"Registered Model with name={full_name} not found")
    return rows


def _versions_named(user, name):
    """Versions of the model named `name` (lowercase), if `user` sees it and it is no prompt.
    The model's id comes first, as a subquery: joined on the name, PostgreSQL's generic plan
    walked version number `n` of every model (the (model, version) index by its second column)."""
    return _visible_versions(user).filter(model_id=_model_id_named(name))


def _model_id_named(name):
    return Subquery(RegisteredModel.objects.filter(full_name=name).values("pk")[:1])


def registry_version_search(user, *, filter_string, order, page_token, size):
    """`model-versions/search` as rows with tags and aliases: (rows, next page token or None)."""
    from . import search

    rows, token = search.compiled_search(("mlflow-versions",), registry_versions, search.VERSION_GRAMMAR, user=user,
                                         filter_string=filter_string, order=order, page_token=page_token, size=size)
    return registry_version_rows(rows), token


def registry_version_row(user, full_name, *, version=None, alias=None):
    """Version number `version`, or the version `alias` points to, of the model `full_name`, as
    the MLflow API shows it (with tags and aliases): one query compiled once, and one for the
    details. The errors of `model_version` / `model_version_by_alias` otherwise."""
    name = (full_name or "").lower()
    if alias is None:
        number = names.validate_version_number(version)
        rows = compiled_for(user, ("mlflow-version",), lambda user, name, number: _mlflow_versions(
            _versions_named(user, name).filter(version=number)), one=True, name=name, number=number)
    else:
        # The version the alias points to, looked up from the model's id (one probe of the alias
        # index by name and model): as an EXISTS on the version, PostgreSQL's generic plan
        # started from every alias of that name (`champion` of every model).
        rows = compiled_for(user, ("mlflow-alias",), lambda user, name, alias: _mlflow_versions(
            _versions_named(user, name).filter(pk=Subquery(
                Alias.objects.named(alias).filter(model_id=_model_id_named(name)).order_by().values("version_id")[:1]
            ))), one=True, name=name, alias=str(alias or ""))
    if not rows:
        model = registry_model_get(user, full_name)  # each raises the precise error
        if alias is None:
            model_version(model, version)
        else:
            model_version_by_alias(model, alias)
        raise NotFound(f"Model Version (name={full_name}, version={version}) not found")
    return registry_version_rows(rows)[0]


def registry_version_made(version):
    """`version` as the MLflow API shows it (`registry_version_row`'s columns), for the answer to
    the request that made it: read by its id, without the permission filter (that request's
    checks allowed it; the filtered read by name cost PostgreSQL 0.3 ms more a registration)."""
    rows = compiled_rows(("mlflow-version-made",), lambda pk: _mlflow_versions(ModelVersion.objects.filter(pk=pk)),
                         pk=version.pk)
    if not rows:  # deleted since, by another request
        raise NotFound(f"Model Version (name={version.model.full_name}, version={version.version}) not found")
    return registry_version_rows(rows)[0]


def registry_model_get(user, full_name):
    """`model_get` for the MLflow API's writes: prompts are not found (checked in the same query)."""
    model = _model_get(user, full_name, "registry-model", lambda: RegisteredModel.objects.select_related(
        "created_by").annotate(is_prompt=_is_prompt("pk")))
    if model.is_prompt:
        raise NotFound(f"Registered Model with name={full_name} not found")
    return model
