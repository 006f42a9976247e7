"""Unity Catalog's privilege model, decided here and nowhere else.

- Principals are users and groups; every securable has one owner, a user or a group.
- A privilege granted on a catalog applies to every schema and model in it; one on a schema, to
  its models. Owners hold every privilege on what they own, and so on everything inside it.
- Superusers (metastore admins) bypass every check.

Everything is expressed as `Q` objects over the securable's table, so list pages filter in the
database in one query, and a single object's capabilities come back as annotations on the query
that loads it. Both test the row against the user's rights, listed once in front of the
statement from guardian's direct-foreign-key grant tables and the owner columns (`visible`,
`with_capabilities`); `q_holds` and `q_visible` state the same rule as one `Q` per row (grants
as `EXISTS` subqueries), which experiments use and tests compare against.
"""

from contextvars import ContextVar
from functools import cache, lru_cache, reduce
from operator import and_, or_

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import BooleanField, Case, Exists, ExpressionWrapper, F, IntegerField, OuterRef, Q, Value, When
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast
from django.utils.functional import SimpleLazyObject, empty
from django_cte import CTE, with_cte

from .db import compiled, compiled_objects, compiled_rows, compiled_with_caller, literal
from .errors import Forbidden, InvalidInput, NotFound
from .models import (
    CATALOG_PRIVILEGES,
    EXPERIMENT_PRIVILEGES,
    MODEL_PRIVILEGES,
    PRIVILEGE_CODENAMES,
    SCHEMA_PRIVILEGES,
    Catalog,
    CatalogGroupGrant,
    CatalogUserGrant,
    Experiment,
    ExperimentGroupGrant,
    ExperimentUserGrant,
    ModelGroupGrant,
    ModelUserGrant,
    ModelVersion,
    RegisteredModel,
    Schema,
    SchemaGroupGrant,
    SchemaUserGrant,
)

OWNER = "OWNER"
LEVELS = ("catalog", "schema", "model")

# The level whose grants (and the grants above it) decide each privilege.
PRIVILEGE_LEVEL = {
    "USE CATALOG": "catalog",
    "CREATE SCHEMA": "catalog",
    "USE SCHEMA": "schema",
    "CREATE MODEL": "schema",
    "EXECUTE": "model",
    "APPLY TAG": "model",
}
GRANTABLE = {"catalog": CATALOG_PRIVILEGES, "schema": SCHEMA_PRIVILEGES, "model": MODEL_PRIVILEGES,
             "experiment": EXPERIMENT_PRIVILEGES}
# Privileges a grant of another one includes (only experiments accept MODIFY).
IMPLIED_BY = {"EXECUTE": ["MODIFY"]}

# How to reach each level from a row of each table.
PATHS = {
    Catalog: {"catalog": ""},
    Schema: {"catalog": "catalog__", "schema": ""},
    RegisteredModel: {"catalog": "schema__catalog__", "schema": "schema__", "model": ""},
    ModelVersion: {"catalog": "model__schema__catalog__", "schema": "model__schema__", "model": "model__"},
    Experiment: {"experiment": ""},
}
OWN_LEVEL = {Catalog: "catalog", Schema: "schema", RegisteredModel: "model", ModelVersion: "model",
             Experiment: "experiment"}
GRANT_TABLES = {
    "catalog": (CatalogUserGrant, CatalogGroupGrant),
    "schema": (SchemaUserGrant, SchemaGroupGrant),
    "model": (ModelUserGrant, ModelGroupGrant),
    "experiment": (ExperimentUserGrant, ExperimentGroupGrant),
}
SECURABLE_TYPES = {"catalog": Catalog, "schema": Schema, "registered_model": RegisteredModel, "model": RegisteredModel}

# What each action needs, beyond seeing the object (PRODUCT.md §3).
ACTIONS = {
    "catalog.read": [],
    "catalog.create_schema": ["CREATE SCHEMA"],
    "catalog.edit": [OWNER],
    "catalog.delete": [OWNER],
    "catalog.manage": [OWNER],  # grant, revoke, transfer ownership
    "schema.read": [],
    "schema.create_model": ["CREATE MODEL"],
    "schema.edit": [OWNER],
    "schema.delete": [OWNER],
    "schema.manage": [OWNER],
    "model.read": [],  # see it, its versions, load it: EXECUTE (part of visibility)
    "model.create_version": [OWNER],
    "model.alias": [OWNER],
    "model.tag": ["APPLY TAG"],  # owners hold APPLY TAG too
    "model.edit": [OWNER],  # descriptions of the model and its versions
    "model.rename": [OWNER, "CREATE MODEL"],
    "model.delete": [OWNER],  # the model or one of its versions
    "model.manage": [OWNER],
    "model.copy_into": [OWNER],  # target of a copy
    "experiment.read": [],  # see it, its runs, logged models and artifacts; register from them
    "experiment.log_into": ["MODIFY"],  # create runs and logged models in it
    "experiment.edit": [OWNER],  # its tags, name, lifecycle
    "experiment.manage": [OWNER],
}
ACTION_LABELS = {
    "catalog.create_schema": "Creating a schema",
    "catalog.edit": "Editing this catalog",
    "catalog.delete": "Deleting this catalog",
    "catalog.manage": "Managing permissions",
    "schema.create_model": "Creating a model",
    "schema.edit": "Editing this schema",
    "schema.delete": "Deleting this schema",
    "schema.manage": "Managing permissions",
    "model.create_version": "Creating a version",
    "model.alias": "Changing aliases",
    "model.tag": "Changing tags",
    "model.edit": "Editing descriptions",
    "model.rename": "Renaming this model",
    "model.delete": "Deleting",
    "model.manage": "Managing permissions",
    "model.copy_into": "Copying a version into this model",
    "experiment.log_into": "Logging runs",
    "experiment.edit": "Changing this experiment",
    "experiment.manage": "Managing permissions",
}
# Privileges that make an object visible at all.
VISIBILITY = {
    Catalog: ["USE CATALOG"],
    Schema: ["USE CATALOG", "USE SCHEMA"],
    RegisteredModel: ["USE CATALOG", "USE SCHEMA", "EXECUTE"],
    ModelVersion: ["USE CATALOG", "USE SCHEMA", "EXECUTE"],
    Experiment: ["EXECUTE"],
}
# Capabilities computed for one object of each kind.
CAPABILITIES = {
    Catalog: ["USE CATALOG", "CREATE SCHEMA", OWNER],
    Schema: ["USE CATALOG", "USE SCHEMA", "CREATE MODEL", OWNER],
    RegisteredModel: ["USE CATALOG", "USE SCHEMA", "CREATE MODEL", "EXECUTE", "APPLY TAG", OWNER],
}
CAPABILITIES[ModelVersion] = CAPABILITIES[RegisteredModel]
CAPABILITIES[Experiment] = ["EXECUTE", "MODIFY", OWNER]


def _is_bypass(user):
    return bool(user and user.is_active and user.is_superuser)


def _is_nobody(user):
    return user is None or not user.is_authenticated or not user.is_active


def _principal_kind(user):
    """How the permission filters treat `user`: "nobody" (sees nothing), "admin" (bypasses every
    check) or "user" (grants and ownership decide). Queries compiled once (`db.compiled`) are
    kept apart by it, since the three give differently shaped SQL."""
    if _is_nobody(user):
        return "nobody"
    return "admin" if _is_bypass(user) else "user"


class UncheckedCaller(SimpleLazyObject):
    """The user of a request whose credential (an API token) is not checked yet.

    The first query compiled for him (`compiled_for`: the MLflow reads and searches, the
    getters, and so a write's read of the object it changes) checks it in the same statement on
    PostgreSQL: the credential's query finds the
    user, the read runs for his id, one round trip instead of two. Anything else that looks at
    him (an attribute, another query) checks the credential alone first (`check`), as before.
    Nothing is answered for him before his credential is known good: `settle` raises otherwise.

    `check()`: the user, or raises. `query`: (key, build, values) of the credential's compiled
    `values()` query, the user's id first (`db.compiled_with_caller`). `settle(row)`: the user
    from that query's row (None: no such credential), or raises; the row stays in
    `settled_row` (the API's read cache takes the snapshot from it). `in_groups(row)`, if
    given: whether that row's user belongs to any group, then `solo_key` names the credential
    (`compiled_for` reads it without his groups' branches while he is in none)."""

    def __init__(self, check, query, settle, in_groups=None, solo_key=None):
        super().__init__(check)
        self.__dict__.update(credential_query=query, _settle=settle, in_groups=in_groups, solo_key=solo_key)

    @property
    def checked(self):
        return self._wrapped is not empty

    def settle(self, row):
        self.__dict__["settled_row"] = row
        try:
            self._wrapped = self._settle(row)
        except Exception as failure:
            self.__dict__["_failure"] = failure  # `resolve` raises it again, without a query
            raise
        return self._wrapped

    def resolve(self):
        """The user, his credential checked on its own if no query has checked it yet."""
        if self._wrapped is empty:
            if "_failure" in self.__dict__:
                raise self.__dict__["_failure"]
            self._setup()
        return self._wrapped


def compiled_for(user, key, build, /, *, objects=False, one=False, tuples=False, **values):
    """`db.compiled_rows` (`objects`: `db.compiled_objects`) for a query filtered or annotated
    by `permissions` for `user`: `build` takes the user as `user`; the SQL is compiled once per
    kind of user. Nobody sees anything: no query. `one`: the query finds at most one row.
    `tuples`: as for `db.compiled_rows`.

    For an `UncheckedCaller` the query also checks his credential, in the same statement
    (PostgreSQL), compiled for an ordinary user: a superuser's answer, which can differ
    (capabilities, rows he sees without grants), is asked again with his own.

    A caller who was in no group at his last such read is read without the group branches of
    the rights lists (`_SOLO`: a plan of ~25 nodes fewer, which PostgreSQL starts on every run;
    0.07-0.25 ms of a read served), and the same statement says whether he is in a group now (the
    credential's row, `in_groups`): if he is, the answer is asked again with them. Without a
    group those branches find nothing, so either way the answer is the one the full lists
    give, in the statement's own snapshot."""
    if isinstance(user, UncheckedCaller):
        if not user.checked and connections[DEFAULT_DB_ALIAS].vendor == "postgresql":
            solo = user.in_groups is not None and _solo_callers.get(user.solo_key, False)
            variant = _SOLO.set(solo)
            try:
                row, found = compiled_with_caller(user.credential_query, (*key, "user", solo), build, objects=objects,
                                                  one=one, tuples=tuples, user=_some_user(), **values)
            finally:
                _SOLO.reset(variant)
            if _principal_kind(user.settle(row)) == "user":
                if user.in_groups is None:
                    return found
                in_groups = user.in_groups(row)
                _remember_solo(user.solo_key, not in_groups)
                if not (solo and in_groups):
                    return found
        user = user.resolve()
    kind = _principal_kind(user)
    if kind == "nobody":
        return []
    if objects:
        return compiled_objects((*key, kind), build, user=user, **values)
    return compiled_rows((*key, kind), build, user=user, tuples=tuples, **values)


# Per process: whether the caller of a credential (by `UncheckedCaller.solo_key`) was in no
# group at his last read (`compiled_for`); only ever a guess of which SQL to run, never trusted
# for an answer. Forgotten in bulk when it grows past `_SOLO_CALLERS_MAX`.
_solo_callers = {}
_SOLO_CALLERS_MAX = 10_000
# Set while `compiled_for` compiles a read for a caller in no group: the rights lists are
# built without the branches that read his groups (`_rights_sql`), under a key of their own.
_SOLO = ContextVar("permissions_solo", default=False)


def _remember_solo(key, solo):
    if len(_solo_callers) >= _SOLO_CALLERS_MAX:
        _solo_callers.clear()
    _solo_callers[key] = solo


@cache
def _some_user():
    """An ordinary active user, for `compiled_for` to compile by (the caller's row supplies the id)."""
    return get_user_model()(pk=0, is_active=True)


def _memberships(user_id):
    """The group memberships of the user `user_id` (an id or an expression): the one source of
    "his groups" for every test here, for the lists' group branches and for `in_any_group`."""
    return get_user_model().groups.through.objects.filter(user_id=user_id)


def in_any_group(user_id):
    """Whether the user `user_id` (an expression, e.g. `OuterRef`) belongs to any group, as a
    column: what a credential's row says for `compiled_for`, whose lists leave the group
    branches out only for a caller for whom it is false."""
    return Exists(_memberships(user_id))


def _owns_at(user, prefix):
    memberships = _memberships(user.pk).filter(group_id=OuterRef(f"{prefix}owner_group_id"))
    return Q(**{f"{prefix}owner_user_id": user.pk}) | Q(Exists(memberships))


def _granted_at(user, level, prefix, privilege):
    held_through = [privilege, "ALL PRIVILEGES", *IMPLIED_BY.get(privilege, [])]
    codenames = [PRIVILEGE_CODENAMES[p] for p in held_through]
    user_table, group_table = GRANT_TABLES[level]
    target = OuterRef(f"{prefix}id")
    by_user = user_table.objects.filter(content_object_id=target, user_id=user.pk, permission__codename__in=codenames)
    # The user's groups by their memberships alone (auth_group itself adds nothing to the test).
    members = _memberships(user.pk).values("group_id")
    by_group = group_table.objects.filter(
        content_object_id=target, group_id__in=members, permission__codename__in=codenames
    )
    return Q(Exists(by_user)) | Q(Exists(by_group))


def q_holds(user, privilege, cls):
    """Rows of `cls` on which `user` holds `privilege` (or is OWNER), as a Q object."""
    if _is_bypass(user):
        return Q()
    if _is_nobody(user):
        return Q(pk__in=[])
    paths = PATHS[cls]
    own = OWN_LEVEL[cls]
    level = own if privilege == OWNER or own == "experiment" else PRIVILEGE_LEVEL[privilege]
    chain = list(paths)  # from the top level down
    q = Q(pk__in=[])
    if own == "experiment" and privilege != OWNER:
        q |= q_shared_experiment()
    for current in chain[: chain.index(level) + 1]:
        prefix = paths[current]
        q |= _owns_at(user, prefix)
        if privilege != OWNER:
            q |= _granted_at(user, current, prefix, privilege)
    return q


def q_visible(user, cls):
    """Rows of `cls` that `user` may see, as a Q object: he holds every privilege of
    `VISIBILITY[cls]` (`q_holds`), tested row by row. What experiments are filtered with; for
    the securables of catalogs, the rule as stated, which tests hold `visible` to."""
    q = Q()
    for privilege in VISIBILITY[cls]:
        q &= q_holds(user, privilege, cls)
    return q


def visible(user, queryset):
    """Filter any queryset of catalogs, schemas, models or versions to what `user` may see.

    The rule is `q_visible`'s (tests compare them), with the user's own rights computed once per
    statement, in front of it (`WITH`, through django-cte): his groups, then for each level the
    rows he or one of his groups owns or holds a grant on (`_rights_sql`), then the schemas he
    may see (`_visible_schemas_sql`). The rows are then tested against those lists: a catalog
    by its id, a schema by its catalog's and its own, a model by its schema's and its own, a
    version by its model's. Tested on the rows, a page of a list walks the name index and stops
    at the end of the page; the lists grow with what the user holds, not with the tables.

    Before, each list was a UNION of lookups spelled out wherever it was used: PostgreSQL
    started ~100 plan nodes for a page of models (each ownership and grant table once per list,
    seven lists), most of them never run; ~70 now. The first page's statement 0.36 → 0.30 ms
    with 50 models, 0.53 → 0.45 ms with 1,048."""
    if _is_bypass(user):
        return queryset
    cls = queryset.model
    if not _listed(user, cls):
        return queryset.filter(q_visible(user, cls))
    return _with_lists(user, queryset.filter(_q_visible_rows(cls)), _VISIBLE_BY[cls])


def _with_lists(user, queryset, names):
    """`queryset` with `user`'s lists `names` in front of its statement (those it lacks)."""
    present = {cte.name for cte in getattr(queryset.query, "_with_ctes", ())} & set(_CTE_ORDER)
    if present and getattr(queryset.query, "_visible_for", None) != user.pk:
        # Filtered once already (a queryset built on another): the lists in front must be his.
        raise AssertionError("permissions: a queryset already filtered for another user")
    ctes = [_rights_cte(user, queryset.db, name) for name in _CTE_ORDER if name in names - present]
    if not ctes:
        return queryset
    queryset = with_cte(*ctes, select=queryset)
    queryset.query._visible_for = user.pk
    return queryset


# The lists `visible` computes in front of a statement, by name, in the order they are written
# (each uses only those before it).
_GROUPS, _SCHEMAS = "perm_groups", "perm_visible_schemas"
_RIGHTS = {Catalog: "perm_catalog_rights", Schema: "perm_schema_rights", RegisteredModel: "perm_model_rights"}
_CTE_ORDER = [_GROUPS, *_RIGHTS.values(), _SCHEMAS]
_VISIBLE_BY = {
    Catalog: {_GROUPS, _RIGHTS[Catalog]},
    Schema: {_GROUPS, _RIGHTS[Catalog], _RIGHTS[Schema]},
    RegisteredModel: set(_CTE_ORDER),
    ModelVersion: set(_CTE_ORDER),
}
# The codename a rights row has when the row comes from ownership (no privilege is spelled so):
# owning a row holds every privilege decided at its level or below.
_OWNED = "owner"


def _held(cls, privilege):
    """The ids of the `cls` rows on which the user holds `privilege` himself (owned, or granted
    it, ALL PRIVILEGES or a privilege implying it; OWNER: owned), from his rights list. The
    codenames are written into the SQL (constants of ours, [a-z_]): as parameters, PostgreSQL's
    generic plan could not tell how many rights rows each list keeps."""
    codenames = [_OWNED] if privilege == OWNER else [
        _OWNED, *(PRIVILEGE_CODENAMES[p] for p in (privilege, "ALL PRIVILEGES", *IMPLIED_BY.get(privilege, [])))]
    return RawSQL(f'SELECT "id" FROM "{_RIGHTS[cls]}" WHERE "codename" IN ({", ".join(map(literal, codenames))})', ())


def _q_visible_rows(cls):
    """The test of `visible` on a row of `cls`, against the lists in front of the statement."""
    if cls in (Catalog, Schema):
        # Every privilege of its visibility held, as `q_visible` states it.
        return reduce(and_, (_q_held_listed(cls, privilege) for privilege in VISIBILITY[cls]))
    # A model: its schema is visible, and EXECUTE is held on the schema or above, or on itself. A
    # version is visible exactly when its model is: the same test on its model's row (as the
    # model's id among the visible models', PostgreSQL built that whole list to read one model's
    # versions: 0.33 → 0.65 ms with 1,048 models).
    model = "model__" if cls is ModelVersion else ""
    return Q(**{f"{model}schema_id__in": RawSQL(f'SELECT "id" FROM "{_SCHEMAS}"', ())}) & (
        Q(**{f"{model}schema_id__in": RawSQL(f'SELECT "id" FROM "{_SCHEMAS}" WHERE "execute"', ())}) | Q(
            **{f"{model}pk__in": _held(RegisteredModel, "EXECUTE")}))


def _rights_cte(user, using, name):
    """The list `name` for `user`, its SQL compiled once (Django spends milliseconds assembling
    querysets); the user's id its parameter (the visible schemas read only the lists before)."""
    values = {} if name == _SCHEMAS else {"user": user}
    sql, params = compiled(("visible-cte", name, _SOLO.get()), _CTE_SQL[name], using=using, **values)
    return CTE(_raw_list(sql, tuple(params)), name=name, materialized=True)


@lru_cache(maxsize=1024)
def _raw_list(sql, params):
    """django-cte's raw CTE body for `sql` with `params` (the same SQL and ids give the same
    one: `raw_cte_sql` builds four classes each call, ~1 ms a page that filters four lists)."""
    from django_cte.raw import raw_cte_sql

    return raw_cte_sql(sql, params, {})


def _groups_sql(user):
    """The ids of the user's groups."""
    return _memberships(user.pk).values("group_id").query.sql_with_params()


def _rights_sql(cls):
    """build(user) of the rows (id, codename) of what `user` holds on `cls` rows himself: one for
    each row owned by him or one of his groups (codename `_OWNED`) and for each grant to him or
    one of his groups (its privilege's codename). UNION ALL of branches that each start from an
    index or a grant table: the list is only ever tested with IN."""

    def build(user):
        groups = RawSQL(f'SELECT "group_id" FROM "{_GROUPS}"', ())
        # Of the codename's own type: a text column would have PostgreSQL convert every grant row's.
        owned = Cast(RawSQL(literal(_OWNED), ()), output_field=Permission._meta.get_field("codename"))
        user_table, group_table = GRANT_TABLES[OWN_LEVEL[cls]]
        solo = _SOLO.get()  # a caller in no group (`compiled_for`): his groups' branches would find nothing
        branches = [
            cls.objects.filter(owner_user_id=user.pk).values("id", codename=owned),  # names the columns
            None if solo else cls.objects.filter(owner_group_id__in=groups).values("id", codename=owned),
            user_table.objects.filter(user_id=user.pk).values("content_object_id", codename=F("permission__codename")),
            None if solo else group_table.objects.filter(group_id__in=groups).values(
                "content_object_id", codename=F("permission__codename")),
        ]
        parts = [qs.order_by().query.sql_with_params() for qs in branches if qs is not None]
        return " UNION ALL ".join(sql for sql, _ in parts), [p for _, params in parts for p in params]

    return build


def _visible_schemas_sql():
    """The schemas the user may see, each with `execute`: EXECUTE held on it or its catalog (the
    part of a model's test its schema decides; a model can also hold it itself)."""
    held_execute = _q_held_listed(Schema, "EXECUTE")
    return Schema.objects.filter(_q_visible_rows(Schema)).order_by().values(
        "id", execute=ExpressionWrapper(held_execute, output_field=BooleanField())).query.sql_with_params()


_CTE_SQL = {_GROUPS: _groups_sql, **{name: _rights_sql(cls) for cls, name in _RIGHTS.items()},
            _SCHEMAS: _visible_schemas_sql}


def filter_holding(user, queryset, *privileges):
    """Visible rows on which `user` also holds every one of `privileges` (e.g. OWNER, for the
    list of models a user may copy into), read from the rights lists `visible` put in front."""
    queryset = visible(user, queryset)
    if _is_bypass(user):
        return queryset
    cls = queryset.model
    listed = _listed(user, cls)
    for privilege in privileges:
        queryset = queryset.filter(_q_held_listed(cls, privilege) if listed else q_holds(user, privilege, cls))
    return queryset


def _cap_field(privilege):
    return "cap_" + privilege.lower().replace(" ", "_")


# Which user the `cap_*` annotations on a row were computed for: an object annotated for one
# user must never answer for another (a shared object, a service called with another actor).
CAP_USER_FIELD = "cap_for_user"


def _user_key(user):
    return None if _is_nobody(user) else user.pk


def with_capabilities(user, queryset):
    """Annotate each row with what `user` may do to it: `cap_owner`, `cap_execute`, … (for
    catalogs, schemas, models and versions, from the rights lists `visible` uses)."""
    cls = queryset.model
    listed = _listed(user, cls)
    annotations = {CAP_USER_FIELD: Value(_user_key(user), output_field=IntegerField())}
    for privilege in CAPABILITIES[cls]:
        if _is_bypass(user):
            annotations[_cap_field(privilege)] = Value(True, output_field=BooleanField())
        else:
            annotations[_cap_field(privilege)] = Case(
                When(_q_held_listed(cls, privilege) if listed else q_holds(user, privilege, cls), then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            )
    queryset = queryset.annotate(**annotations)
    return _with_lists(user, queryset, {_GROUPS, *(_RIGHTS[_LEVEL_CLS[level]] for level in PATHS[cls])}) if listed \
        else queryset


def _listed(user, cls):
    """Whether `user`'s privileges on `cls` rows are read from his rights lists: an ordinary user
    and a securable of catalogs (a superuser holds everything, nobody nothing; experiments keep
    `q_holds`)."""
    return not (_is_bypass(user) or _is_nobody(user)) and cls in _VISIBLE_BY


def _q_held_listed(cls, privilege):
    """`q_holds` against the user's rights lists (`visible`'s): held on the row or a level
    above it, where the privilege is decided or higher (OWNER: owned, at any level; a privilege
    decided below `cls`, as EXECUTE for a schema: held on the row or above, for what it holds).
    The ownership and grant EXISTS subqueries of every level, correlated to the row, cost
    PostgreSQL 0.4 ms for a model's six capabilities."""
    paths, chain = PATHS[cls], list(PATHS[cls])
    level = OWN_LEVEL[cls] if privilege == OWNER else PRIVILEGE_LEVEL[privilege]
    levels = chain[: chain.index(level) + 1] if level in chain else chain

    def held_at(current):
        prefix = paths[current]
        column = f"{prefix[:-2]}_id" if prefix else "pk"  # the foreign key, not a join to its table
        return Q(**{f"{column}__in": _held(_LEVEL_CLS[current], privilege)})

    return reduce(or_, map(held_at, levels))


_LEVEL_CLS = {"catalog": Catalog, "schema": Schema, "model": RegisteredModel}


def capabilities(user, obj):
    """The set of privileges `user` holds on `obj` (OWNER included), from the annotations a
    selector put on it for this same user, or else from one fresh query (not kept on `obj`, so
    a grant or revoke since then counts at once, and no other user ever reads them)."""
    cls = type(obj)
    fields = [_cap_field(p) for p in CAPABILITIES[cls]]
    annotated = getattr(obj, CAP_USER_FIELD, False) == _user_key(user) and all(hasattr(obj, f) for f in fields)
    if annotated:
        return frozenset(p for p in CAPABILITIES[cls] if getattr(obj, _cap_field(p)))
    if _is_nobody(user):
        return frozenset()
    if _is_bypass(user):
        exists = cls.objects.filter(pk=obj.pk).exists()  # a deleted object is not found, even by admins
        return frozenset(CAPABILITIES[cls]) if exists else frozenset()
    row = _capability_row(user, cls, obj.pk)
    return frozenset(p for p, held in zip(CAPABILITIES[cls], row or ()) if held)


def _capability_row(user, cls, pk):
    from django.db import router

    fields = [_cap_field(p) for p in CAPABILITIES[cls]]
    # The same SQL for every user and object but for the two ids (`compiled`: Django spends
    # milliseconds assembling its EXISTS subqueries). Same rule, same SQL as `with_capabilities`.
    rows = compiled_rows(("capabilities", cls), lambda user, pk: (
        with_capabilities(user, cls.objects.filter(pk=pk)).values(*fields)), using=router.db_for_read(cls),
        user=user, pk=pk)
    return [rows[0][f] for f in fields] if rows else None


def visible_one(user, key, queryset, **lookup):
    """The object `queryset().filter(**lookup)` finds, annotated with `user`'s capabilities, if
    `user` may see it, else None: one query, its SQL compiled once per `key` (naming the
    queryset's shape) and kind of user. What getters use."""
    found = compiled_for(user, key, lambda user, **lookup: with_capabilities(user, queryset().filter(**lookup)[:1]),
                         objects=True, one=True, **lookup)
    return found[0] if found and is_visible(user, found[0]) else None


def is_visible(user, obj):
    caps = capabilities(user, obj)
    return all(p in caps for p in VISIBILITY[type(obj)])


def not_found_message(obj):
    if isinstance(obj, ModelVersion):
        return f"Model Version (name={obj.model.full_name}, version={obj.version}) not found"
    if isinstance(obj, RegisteredModel):
        return f"Registered Model with name={obj.full_name} not found"
    if isinstance(obj, Schema):
        return f"Schema '{obj.full_name}' does not exist."
    if isinstance(obj, Experiment):
        return f"No Experiment with id={obj.pk} exists"
    return f"Catalog '{obj.name}' does not exist."


def can(user, action, obj):
    """True when `user` may perform `action` on `obj` (for showing or hiding a button)."""
    try:
        require(user, action, obj)
    except (NotFound, Forbidden):
        return False
    return True


def require(user, action, obj):
    """Raise NotFound when `obj` is invisible to `user`, Forbidden naming the missing privilege
    when it is visible but `action` is not allowed. Returns the user's capabilities."""
    needs = ACTIONS[action]
    caps = capabilities(user, obj)
    if not all(p in caps for p in VISIBILITY[type(obj)]):
        raise NotFound(not_found_message(obj))
    missing = [p for p in needs if p not in caps]
    if missing:
        what = ACTION_LABELS.get(action, action)
        kind = type(obj).__name__ if not hasattr(obj, "securable_type") else obj.securable_type.replace("_", " ")
        if isinstance(obj, ModelVersion):
            kind, target = "registered model", obj.model.full_name
        else:
            target = obj.full_name
        lacking = " and ".join("ownership" if p == OWNER else f"the {p} privilege" for p in missing)
        raise Forbidden(f"{what} on {kind} {target} requires {lacking}.", missing=missing)
    return caps


def normalise_privilege(text, securable_type):
    """`create_model`, `CREATE MODEL`, `Create Model` → `CREATE MODEL`, checked against what
    the securable type accepts."""
    if not isinstance(text, str):
        raise InvalidInput("A privilege must be a string.")
    name = " ".join(text.replace("_", " ").upper().split())
    level = {"catalog": "catalog", "schema": "schema", "registered_model": "model", "model": "model",
             "experiment": "experiment"}[securable_type]
    allowed = GRANTABLE[level]
    if name not in allowed:
        raise InvalidInput(
            f"Privilege {text[:60]!r} cannot be granted on a {securable_type.replace('_', ' ')}; "
            f"allowed: {', '.join(allowed)}."
        )
    return name


# --- Tracking (experiments, runs, logged models): outside catalogs (issue 4) -------------------
# An experiment is a securable of its own, with one owner (a user or a group; its creator at
# first) and grants, in the same model as catalogs and models, but with no parent to inherit from:
#
#   EXECUTE         see the experiment, every run and logged model in it, their params,
#                   metrics, datasets and artifacts (download), and register model versions
#                   from them (into a model one owns: the registry's own rule).
#   MODIFY          EXECUTE, and log into it: create runs and logged models (each stays its
#                   creator's: changing another person's run needs owning it or the experiment).
#   ALL PRIVILEGES  both.
#   owner           everything: change the experiment (tags), change and delete any run or
#                   logged model in it, grant, revoke, transfer ownership.
#
# A run or logged model is also always seen and changed by its own creator (its owner).
# Experiment "0" (Default) has no owner and is shared: everyone sees it and may log runs into
# it, but a run there is seen only by its owner (and by grantees of Default, which only a
# superuser can grant). Superusers see and change everything.
TRACKING_TYPES = ("experiment", "run", "logged_model")


def q_shared_experiment(prefix=""):
    """The ownerless Default experiment everyone may see and log into."""
    return Q(**{f"{prefix}owner_user__isnull": True, f"{prefix}owner_group__isnull": True})


def q_tracking_visible(user, kind):
    """Experiments, runs or logged models `user` may see, as a Q over that table."""
    if kind == "experiment":
        return q_visible(user, Experiment)
    if _is_bypass(user):
        return Q()
    if _is_nobody(user):
        return Q(pk__in=[])
    return (
        Q(owner_id=user.pk)
        | _owns_at(user, "experiment__")
        | _granted_at(user, "experiment", "experiment__", "EXECUTE")
    )


def tracking_visible(user, queryset, kind):
    return queryset.filter(q_tracking_visible(user, kind))


def tracking_require_write(user, obj, kind):
    """Raise NotFound/Forbidden unless `user` may change `obj`, a visible experiment, run or
    logged model. `kind`: "experiment" (its tags: the owner), "experiment.log_into" (create runs
    and logged models: MODIFY), "run" / "logged_model" (its creator or the experiment's owner)."""
    if kind == "experiment":
        require(user, "experiment.edit", obj)
        return
    if kind == "experiment.log_into":
        require(user, "experiment.log_into", obj)
        return
    if _is_bypass(user):
        return
    if _is_nobody(user):
        raise NotFound("Not found.")
    if obj.owner_id == user.pk or OWNER in capabilities(user, obj.experiment):
        return
    what = kind.replace("_", " ")
    raise Forbidden(
        f"Changing this {what} requires being its creator or the owner of experiment {obj.experiment.name}.",
        missing=[OWNER],
    )
