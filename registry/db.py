"""Queries that PostgreSQL plans once per connection.

Our permission filters are EXISTS subqueries over three levels of grants and owners: cheap to
run (well under a millisecond) but ~5–15 ms for PostgreSQL to plan, on every request, because
Django binds parameters on the client, so every query is new to the server. Inside
`reused_plans()`, queries are bound server-side and prepared: psycopg keeps the prepared
statement per connection after five runs, and PostgreSQL runs its generic plan from then on
(settings.py sets `plan_cache_mode`: left to itself, it kept planning a custom plan on every run
of some searches), so later runs skip planning. Only the queries run inside the block are prepared; Django's cursor wrapper
still counts, logs and maps errors. On SQLite, or with DB_PREPARED_STATEMENTS=false (settings.py:
poolers in transaction mode), the block changes nothing.
"""

from collections import OrderedDict
import re
import threading
from contextlib import contextmanager
from typing import NamedTuple

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Aggregate, BigIntegerField, Func, Model, TextField
from django.db.models.constants import OnConflict
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, JSONArray, JSONObject

_cursor_class = None


def _preparing_cursor_class(connection):
    global _cursor_class
    if _cursor_class is None:
        from django.db.backends.postgresql.base import ServerBindingCursor as base  # psycopg 3 only

        class PreparingCursor(base):
            def execute(self, query, params=None, *, prepare=None, binary=None):
                return super().execute(query, params, prepare=True if prepare is None else prepare, binary=binary)

        _cursor_class = PreparingCursor
    return _cursor_class


def _enabled(connection):
    if connection.vendor != "postgresql":
        return False
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    if not is_psycopg3:
        return False
    if connection.connection is None:
        connection.ensure_connection()
    return connection.connection.prepare_threshold is not None


@contextmanager
def reused_plans(using=DEFAULT_DB_ALIAS):
    connection = connections[using]
    if not _enabled(connection):
        yield
        return
    raw = connection.connection
    previous = raw.cursor_factory
    raw.cursor_factory = _preparing_cursor_class(connection)
    try:
        yield
    finally:
        if connection.connection is raw:
            raw.cursor_factory = previous


def cache_long_statements(length=16_384, params=200):
    """Let psycopg keep its translation (%s → $1) of our longest statements too.

    psycopg caches the translated text of a statement only up to 4,096 characters and 50
    parameters (module constants of `psycopg._queries`); the permission-filtered reads compiled
    once below are ~7,000 characters with ~76 parameters, so psycopg re-parsed them on every
    call (0.12 ms of a 0.76 ms read, measured). The cache itself stays an LRU of 128 entries.
    Performance only: if a psycopg release renames the constants, nothing changes here."""
    try:
        from psycopg import _queries
    except ImportError:  # psycopg 2 or no PostgreSQL driver
        return
    if hasattr(_queries, "MAX_CACHED_STATEMENT_LENGTH") and hasattr(_queries, "MAX_CACHED_STATEMENT_PARAMS"):
        _queries.MAX_CACHED_STATEMENT_LENGTH = max(_queries.MAX_CACHED_STATEMENT_LENGTH, length)
        _queries.MAX_CACHED_STATEMENT_PARAMS = max(_queries.MAX_CACHED_STATEMENT_PARAMS, params)


# --- SQL compiled once ------------------------------------------------------------------------
# Django assembles a query's SQL anew on every request; for the permission filters and the MLflow
# API's single-object reads that takes milliseconds, several times longer than PostgreSQL takes
# to run them. Their SQL is the same on every request but for a few values (the user's id, a
# name, a version number): `compiled` builds it once with stand-ins for those values and then
# puts the real ones in the stand-ins' places among the parameters.
# Kept per process, least recently used first out: keys made from what clients send (a search's
# shape: `search.compiled_search`) must not grow it without bound.
_SQL_CACHE = OrderedDict()
_SQL_CACHE_SIZE = 1024
_SQL_CACHE_LOCK = threading.Lock()
# Within every integer column's range (Django finds no row for an out-of-range value, without
# asking the database) and far above any id or version number a query writes in as a constant.
_STAND_IN_ID = 2_147_000_000
# A stand-in text holds LIKE's wildcards and escape character, so a lookup that would rewrite the
# value (escape it for LIKE, wrap it in %) does not find it among the parameters and is refused;
# and capitals, so that lowering it (a `transforms` function) gives another text; and before its
# wildcards a literal start of its own, so that the bounds of that start (`search.like_range`,
# `transforms` too) tell each stand-in from the others.
_STAND_IN_TEXT = "\x1eStand-In-{}\x1e%_\\\x1e"


def _stand_in(index, value):
    """(what `build` gets, the marker that must appear among the parameters)."""
    from django.contrib.auth import get_user_model

    if isinstance(value, bool):
        raise TypeError("compiled(): booleans change a query's shape; put them in the key")
    if isinstance(value, int):
        return _STAND_IN_ID + index, _STAND_IN_ID + index
    if isinstance(value, str):
        return _STAND_IN_TEXT.format(index), _STAND_IN_TEXT.format(index)
    if isinstance(value, get_user_model()):
        # A superuser's filters differ from another user's (no grants are looked at): the key
        # must tell them apart (`permissions.compiled_for` does), and his id need not appear.
        if not value.is_active:
            raise ValueError("compiled(): not for inactive users (they see nothing: no query)")
        marker = _STAND_IN_ID + index
        return get_user_model()(pk=marker, is_active=True, is_superuser=value.is_superuser), marker
    raise TypeError(f"compiled(): no stand-in for {type(value).__name__}")


def _real(value):
    return value.pk if hasattr(value, "_meta") else value


class _Compiled:
    """One query's SQL and what turning its rows into results takes, kept per database and key."""

    def __init__(self, key, build, using, values, transforms):
        names = sorted(values)
        pairs = {name: _stand_in(i, values[name]) for i, name in enumerate(names)}
        queryset = build(**{name: given for name, (given, _) in pairs.items()})
        if isinstance(queryset, tuple):  # (sql, params) put together by hand: for `compiled` only
            queryset, sql, params = None, *queryset
        else:
            query = queryset.query
            compiler = query.get_compiler(using)
            sql, params = compiler.as_sql()
        # marker → (name, function of the real value giving the parameter): the value itself, or
        # what a `transforms` function makes of it (a lowered name, a LIKE pattern as a regex).
        by_marker = {}
        for name, (_, marker) in pairs.items():
            if isinstance(marker, str):
                for function in transforms:
                    by_marker.setdefault(function(marker), (name, function))
            by_marker[marker] = (name, None)
        self.slots = [
            (i, *by_marker[p]) for i, p in enumerate(params)
            if isinstance(p, (int, str)) and not isinstance(p, bool) and p in by_marker
        ]
        optional = {name for name in names if getattr(values[name], "is_superuser", False)}
        missing = set(names) - optional - {name for _, name, _ in self.slots}
        if missing:
            raise AssertionError(f"compiled {key}: {sorted(missing)} did not reach the SQL as parameters")
        if any(str(marker) in sql for marker in by_marker):
            raise AssertionError(f"compiled {key}: a value was written into the SQL text")
        self.sql, self.params, self.using = sql, tuple(params), using
        self._folded = {}  # (caller's SQL, …) → this query LATERAL to it (`fetch_with_caller`)
        self.hand_written = queryset is None
        if self.hand_written:
            return
        if queryset._prefetch_related_lookups or queryset._known_related_objects:
            raise AssertionError(f"compiled {key}: prefetches and known related objects are not kept")
        # With an OFFSET parameter (`compiled_rows(offset=…)`): for a LIMIT-only slice.
        self.offset_sql = f"{sql} OFFSET %s" if query.high_mark is not None and not query.low_mark else None
        # How iterating the queryset would convert the columns (SQLite returns datetimes as
        # text), and name them (values()) or build instances from them (Django's ModelIterable).
        self.converters = compiler.get_converters([s[0] for s in compiler.select[: compiler.col_count]])
        self.columns = list(query.selected or [*query.extra_select, *query.values_select, *query.annotation_select])
        self.klass_info = compiler.klass_info
        if self.klass_info is not None:
            from django.db.models.query import get_related_populators

            select = compiler.select
            fields = self.klass_info["select_fields"]
            self.model_span = (fields[0], fields[-1] + 1)
            self.init_list = [f[0].target.attname for f in select[self.model_span[0] : self.model_span[1]]]
            self.related_populators = get_related_populators(self.klass_info, select, using)
            self.annotation_col_map = compiler.annotation_col_map

    def params_for(self, values):
        params = list(self.params)
        for i, name, function in self.slots:
            value = _real(values[name])
            params[i] = value if function is None else function(value)
        return params

    def fetch(self, using, values, offset=None, before=None):
        if self.hand_written:
            raise AssertionError("compiled: hand-written SQL has no columns to read rows by; use compiled()")
        connection = connections[using]
        sql, params = self.sql, self.params_for(values)
        if offset is not None:
            # The offset as a parameter, so every page of a search is one statement. The LIMIT
            # stays in the SQL (the key names the size): planned for an unknown LIMIT,
            # PostgreSQL walked all 100,000 versions down the updated_at index to find one
            # model's four.
            if self.offset_sql is None:
                raise AssertionError("compiled: an offset needs a queryset sliced [:limit]")
            sql, params = self.offset_sql, [*params, int(offset)]
        if before is not None:
            sql, params = _after(using, before, sql, params)
        return self._convert(connection, _execute(using, sql, params))

    def fetch_with_caller(self, using, values, name, caller, caller_values, offset=None, ordered=True):
        """(`caller`'s row or None, this query's rows) from one statement, the value `name` (a
        user) being the first column of `caller`'s row instead of a parameter: the query runs
        LATERAL to the caller's, whose columns are read from the first row. A row whose
        columns are all NULL is no row (LEFT JOIN). `ordered`: the rows come in this query's
        order (numbered inside, sorted outside; the caller's columns on the first row only);
        for a query finding at most one row, pass False. `offset`: as in `fetch`."""
        if self.hand_written or caller.hand_written:
            raise AssertionError("compiled: hand-written SQL has no columns to read rows by")
        connection = connections[using]
        variant = (caller.sql, name, offset is not None, ordered)
        folded = self._folded.get(variant)
        if folded is None:
            folded = self._folded[variant] = self._fold(caller, name, offset is not None, ordered)
        sql, dropped = folded
        params = [*caller.params_for(caller_values), *(
            p for i, p in enumerate(self.params_for(values)) if i not in dropped)]
        if offset is not None:
            params.append(int(offset))
        width = len(caller.columns)
        rows = _execute(using, sql, params)
        if not rows:
            return None, []
        if ordered:
            # Every row the query found has its number; the LEFT JOIN's row of NULLs has none
            # (testing each column of each row cost 20 µs a page of 50).
            found = [row[width:-1] for row in rows if row[-1] is not None]
        else:
            found = [row[width:] for row in rows if any(v is not None for v in row[width:])]
        return list(rows[0][:width]), self._convert(connection, found)

    def _fold(self, caller, name, offset, ordered):
        """(the SQL of `fetch_with_caller`, the positions of `name`'s parameters it drops)."""
        if connections[caller.using].vendor != "postgresql":
            raise AssertionError("compiled: LATERAL needs PostgreSQL")
        if offset and self.offset_sql is None:
            raise AssertionError("compiled: an offset needs a queryset sliced [:limit]")
        dropped = {i for i, slot, _ in self.slots if slot == name}
        if not dropped:
            raise AssertionError(f"compiled: {name} did not reach the SQL")
        parts, index = [], 0
        for piece in re.split(r"(%%|%s)", self.offset_sql if offset else self.sql):
            if piece == "%s":
                piece = '"caller"."c0"' if index in dropped else piece
                index += 1
            parts.append(piece)
        query = "".join(parts)
        if ordered:
            # row_number() over the rows as the query gives them (no window order: no sort),
            # under a name no values() column takes.
            query = f'SELECT "q".*, row_number() OVER () AS "__ordinal" FROM ({query}) AS "q"'
        columns = ", ".join(f'"c{i}"' for i in range(len(caller.columns)))
        # OFFSET 0 keeps the caller's query a subquery of its own, its columns computed once:
        # pulled up into the join, its expressions (the snapshot, the in-group EXISTS) were
        # computed again on every row found (a page of 100 models: 834 → 739 µs).
        if ordered:
            # The caller's columns on the first row only (`fetch_with_caller` reads them there):
            # on every row, a page of 100 models carried 700 values more (535 → 496 µs).
            own = ", ".join(f'CASE WHEN "found"."__ordinal" > 1 THEN NULL ELSE "caller"."c{i}" END'
                            for i in range(len(caller.columns)))
        else:
            own = '"caller".*'
        return (f'SELECT {own}, "found".* FROM ({caller.sql} OFFSET 0) AS "caller" ({columns}) '
                f'LEFT JOIN LATERAL ({query}) AS "found" ON TRUE' + (' ORDER BY "found"."__ordinal"' if ordered else ""),
                dropped)

    def _convert(self, connection, rows):
        if not self.converters:
            return rows
        converted = []
        for row in rows:
            row = list(row)
            for position, (functions, expression) in self.converters.items():
                for function in functions:
                    row[position] = function(row[position], expression, connection)
            converted.append(row)
        return converted


def _after(using, before, sql, params):
    """The statement (`sql`, `params`) preceded by the data-modifying statement `before` = (sql,
    params): on PostgreSQL one statement, `before` a WITH in front (one round trip fewer); else
    `before` run first, on its own."""
    before_sql, before_params = before
    if connections[using].vendor == "postgresql" and sql.lstrip()[:4].upper() != "WITH":
        return f'WITH "before" AS ({before_sql}) {sql}', [*before_params, *params]
    run(before, using=using)
    return sql, params


def run(statement, /, *, using=DEFAULT_DB_ALIAS):
    """Run the statement (sql, params) that reads no rows (`insert_rows`'s), prepared as
    compiled SQL is."""
    with reused_plans(using), connections[using].cursor() as cursor:
        cursor.execute(*statement)


def _execute(using, sql, params):
    # Prepared on PostgreSQL in writes too (`reused_plans`): SQL compiled once is the same
    # statement every time by construction.
    with reused_plans(using), connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _cached(cache_key, make):
    with _SQL_CACHE_LOCK:  # web threads share it
        entry = _SQL_CACHE.get(cache_key)
        if entry is not None:
            _SQL_CACHE.move_to_end(cache_key)
            return entry
    entry = make()
    with _SQL_CACHE_LOCK:
        _SQL_CACHE[cache_key] = entry
        while len(_SQL_CACHE) > _SQL_CACHE_SIZE:
            _SQL_CACHE.popitem(last=False)
    return entry


def _compile(key, build, using, values, transforms=()):
    cache_key = (using, connections[using].vendor, *key)
    return _cached(cache_key, lambda: _Compiled(key, build, using, values, transforms))


def compiled(key, build, /, *, using=DEFAULT_DB_ALIAS, **values):
    """(sql, params) of the queryset `build(**values)` (or of the (sql, params) it returns), its
    SQL compiled once per database and `key` (which must name everything else the SQL depends on). `values` are ints, strings, or an
    active user (his id goes in; the key must say whether he is a superuser). A value that reaches the SQL other than
    as a plain parameter (inlined, escaped for LIKE) raises AssertionError when first compiled."""
    entry = _compile(key, build, using, values)
    return entry.sql, entry.params_for(values)


# --- Writes of one row, their SQL written once ---------------------------------------------------
# `Model.objects.create()`, `instance.save()` and `queryset.update()` compile their query on every
# call: ~0.4 ms of Python here for the audit log's INSERT (0.17 ms run by hand), which every
# change writes. The hottest writes go through these two instead. Values are converted by their
# fields as the ORM converts them; no signal is sent (none is listened to for these tables), and
# a model with its own save() or a parent table is refused.
class _RowSql(NamedTuple):
    sql: str
    fields: list  # the fields whose values fill its parameters, in order (an UPDATE's pk comes after its SET
    # values, before its `where` values)


def _row_sql(model, verb, names, using, where=(), increment=()):
    """The INSERT ("insert"; "insert-or-skip": nothing where it would break a unique constraint;
    "insert-many": without RETURNING, for `executemany`) or UPDATE of one row (by pk, and the
    `where` fields equal to given values) setting `names` (and adding 1 to the `increment` fields)."""
    def make():
        connection = connections[using]
        meta, quote = model._meta, connection.ops.quote_name
        if meta.parents or model.save is not Model.save:
            raise AssertionError(f"{meta.label}: a parent table or its own save(); write it through the ORM")
        fields = [meta.get_field(name) for name in names]
        columns = [quote(field.column) for field in fields]
        if verb.startswith("insert"):
            returning = connection.features.can_return_columns_from_insert and verb != "insert-many"
            conflict = OnConflict.IGNORE if verb == "insert-or-skip" else None  # each backend's own spelling
            suffix = connection.ops.on_conflict_suffix_sql(fields, conflict, None, None)
            sql = (f"{connection.ops.insert_statement(on_conflict=conflict)} {quote(meta.db_table)} ({', '.join(columns)}) "
                   f"VALUES ({', '.join(['%s'] * len(names))})" + (f" {suffix}" if suffix else "")
                   + (f" RETURNING {quote(meta.pk.column)}" if returning else ""))
        else:
            fields += [meta.get_field(name) for name in where]
            sets = [f"{c} = %s" for c in columns] + [f"{c} = {c} + 1" for c in
                                                     (quote(meta.get_field(name).column) for name in increment)]
            sql = (f"UPDATE {quote(meta.db_table)} SET {', '.join(sets)} "
                   f"WHERE {quote(meta.pk.column)} = %s"
                   + "".join(f" AND {quote(meta.get_field(name).column)} = %s" for name in where))
        return _RowSql(sql, fields)

    return _cached((using, connections[using].vendor, verb, model._meta.label, *names, "where", *where,
                    "increment", *increment), make)


def _insert_sql(model, verb, using):
    """`_row_sql`'s INSERT of every concrete field but a primary key the database assigns."""
    meta = model._meta
    names = tuple(f.attname for f in meta.concrete_fields if f is not meta.pk or not f.db_returning)
    return _row_sql(model, verb, names, using)


def _insert_params(instance, fields, connection):
    """`instance`'s values for those fields, defaults and auto_now filled in as save() fills them."""
    return [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]


def create(model, /, *, using=DEFAULT_DB_ALIAS, skip_conflict=False, **values):
    """`model.objects.create(**values)`: the instance (defaults and auto_now fields filled in as
    save() fills them), inserted, its primary key set. `skip_conflict`: where a row with the same
    unique values exists, nothing is written and None returned (`ON CONFLICT DO NOTHING`)."""
    instance = model(**values)
    connection = connections[using]
    sql, fields = _insert_sql(model, "insert-or-skip" if skip_conflict else "insert", using)
    params = _insert_params(instance, fields, connection)
    with reused_plans(using), connection.cursor() as cursor:
        cursor.execute(sql, params)
        if connection.features.can_return_columns_from_insert:
            row = cursor.fetchone()
            pk = None if row is None else row[0]
        else:
            pk = cursor.lastrowid if cursor.rowcount else None
    if pk is None:
        return None
    instance.pk = pk
    instance._state.adding, instance._state.db = False, using
    return instance


def create_many(model, rows, /, *, using=DEFAULT_DB_ALIAS):
    """`model.objects.bulk_create([model(**values) for values in rows])`, without the instances or
    their keys: `create`'s INSERT (without RETURNING), sent for every row in one round trip
    (psycopg's pipeline). A job's files, 7 for a small model: bulk_create spent ~0.6 ms of
    Python assembling their INSERT each time."""
    if not rows:
        return
    connection = connections[using]
    sql, fields = _insert_sql(model, "insert-many", using)
    params = [_insert_params(model(**values), fields, connection) for values in rows]
    with reused_plans(using), connection.cursor() as cursor:
        cursor.executemany(sql, params)


def insert_params(model, values, /, *, using=DEFAULT_DB_ALIAS):
    """The parameters of `create`'s INSERT of the row `values`, defaults and auto_now fields
    filled in now, for `insert_rows`."""
    return _insert_params(model(**values), _insert_sql(model, "insert-many", using).fields, connections[using])


def insert_rows(model, rows, /, *, using=DEFAULT_DB_ALIAS):
    """(sql, params) of one INSERT of `rows` (each `insert_params`), without RETURNING, not run:
    for a caller that sends it in front of another statement (`compiled_rows(before=…)`)."""
    sql = _insert_sql(model, "insert-many", using).sql
    row = sql[sql.rindex(" VALUES (") + len(" VALUES "):]  # "(%s, …)": insert-many has no suffix
    return sql + f", {row}" * (len(rows) - 1), [p for params in rows for p in params]


def update(model, pk, /, *, using=DEFAULT_DB_ALIAS, where=None, increment=(), **values):
    """`model.objects.filter(pk=pk, **where).update(**values)` (fields by name or attname; an
    auto_now field is not touched unless given, as update() leaves it): how many rows changed,
    0 or 1. `where`: the row is changed only while these fields hold these values. `increment`:
    fields that go up by one (`F(name) + 1`)."""
    names, where = tuple(sorted(values)), where or {}
    conditions = tuple(sorted(where))
    sql, fields = _row_sql(model, "update", names, using, conditions, tuple(increment))
    connection = connections[using]
    given = [values[name] for name in names] + [where[name] for name in conditions]
    params = [field.get_db_prep_save(_real(value), connection) for value, field in zip(given, fields)]
    pk_param = model._meta.pk.get_db_prep_save(pk, connection)
    with reused_plans(using), connection.cursor() as cursor:
        cursor.execute(sql, [*params[:len(names)], pk_param, *params[len(names):]])
        return cursor.rowcount


def compiled_rows(key, build, /, *, using=DEFAULT_DB_ALIAS, offset=None, transforms=(), tuples=False, before=None,
                  **values):
    """The rows of the `values()` queryset `build(**values)` as dicts, as the queryset would give
    them, its SQL compiled once (`compiled`).

    `offset`: skip that many rows of the queryset (sliced `[:limit]`), as a parameter.
    `transforms`: functions a text value may reach the SQL through (`str.lower`: the
    parameter is the lowered value); the key must name everything else that shapes the SQL.
    `tuples`: each row as a sequence of the queryset's columns in their order, not a dict
    (building a dict a row cost a search page of 100 models 25-45 µs in-process, of its
    0.4-0.65 ms beyond the no-op floor). `before`: (sql, params) of a data-modifying statement
    to run first, in the same statement on PostgreSQL (`insert_rows`)."""
    entry = _compile(key, build, using, values, transforms)
    rows = entry.fetch(using, values, offset, before)
    return rows if tuples else [dict(zip(entry.columns, row)) for row in rows]


def compiled_objects(key, build, /, *, using=DEFAULT_DB_ALIAS, offset=None, **values):
    """The model instances of the queryset `build(**values)` (with its select_related objects
    and annotations, as iterating it would give them), its SQL compiled once (`compiled`).
    `offset`: as for `compiled_rows`."""
    entry = _compile(key, build, using, values)
    return _objects(entry, entry.fetch(using, values, offset), using)  # hand-written SQL raises in fetch


def _objects(entry, rows, using):
    if entry.klass_info is None:
        raise AssertionError("compiled: a values() queryset; use compiled_rows")
    model_cls, (start, end) = entry.klass_info["model"], entry.model_span
    out = []
    for row in rows:
        obj = model_cls.from_db(using, entry.init_list, row[start:end])
        for populator in entry.related_populators:
            populator.populate(row, obj)
        for name, position in (entry.annotation_col_map or {}).items():
            setattr(obj, name, row[position])
        out.append(obj)
    return out


def compiled_with_caller(caller, key, build, /, *, using=DEFAULT_DB_ALIAS, objects=False, one=False, offset=None,
                         transforms=(), tuples=False, user, **values):
    """(the caller's row or None, `compiled_rows` — `objects`: `compiled_objects` — of
    `build(user=…, **values)`) in one statement, for the user the caller's query finds: that
    query's first column (his id) stands where `user`'s id would. PostgreSQL only (LATERAL).

    `caller`: (key, build, values) of a `values()` query finding at most one user, id first
    (`api.auth`: a token's user). `user`: any active user of the kind the key compiles for (his
    id is not used). `one`: the query finds at most one row (its rows are not numbered to keep
    their order). `offset`, `transforms`, `tuples`: as for `compiled_rows`."""
    caller_key, caller_build, caller_values = caller
    caller_entry = _compile(caller_key, caller_build, using, caller_values)
    values["user"] = user
    entry = _compile(key, build, using, values, transforms)
    row, rows = entry.fetch_with_caller(using, values, "user", caller_entry, caller_values, offset, not one)
    if objects:
        return row, _objects(entry, rows, using)
    return row, rows if tuples else [dict(zip(entry.columns, found)) for found in rows]


# --- Constants in the SQL ---------------------------------------------------------------------
def literal(text):
    """`text`, one of our own constants, as an SQL string literal, to be written into the SQL
    instead of passed as a parameter: a generic plan then knows the value (how many rows it
    matches). Only plain names: letters, digits, `_`, `.`, `-`; anything else is refused, not
    escaped."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", text):
        raise ValueError(f"{text!r} is no constant for the SQL")
    return f"'{text}'"


def constant(text):
    """`literal(text)` as an expression, for a queryset's filter."""
    return RawSQL(literal(text), (), output_field=TextField())


# --- Timestamps as MLflow shows them --------------------------------------------------------
class EpochMs(Func):
    """A datetime column as whole milliseconds since the epoch (MLflow's timestamps), computed
    by the database: the rows need no datetime built per column (Django's timestamptz loader
    was a fifth of a 100-model search page). Truncated to the millisecond, on every database."""

    output_field = BigIntegerField()

    @property
    def convert_value(self):
        # Both databases' SQL gives an integer already: no int() applied to it on every row.
        return self._convert_value_noop

    def as_postgresql(self, compiler, connection, **extra):
        template = "FLOOR(EXTRACT(EPOCH FROM %(expressions)s) * 1000)::bigint"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler, connection, **extra):
        # Django stores 'YYYY-MM-DD HH:MM:SS[.ffffff]' (UTC): the seconds of the text's first 19
        # characters, the milliseconds from the text (SQLite's date functions round to them).
        sql, params = compiler.compile(self.source_expressions[0])
        if params:
            raise ValueError("EpochMs on SQLite takes a column")
        seconds = f"CAST(strftime('%%s', substr({sql}, 1, 19)) AS INTEGER)"
        return f"({seconds} * 1000 + CAST(substr({sql} || '.000', 21, 3) AS INTEGER))", []



class JSONList(Aggregate):
    """A group's values as one JSON array, as text (parse it with orjson): a row's tags and
    aliases come back in its own query (a subquery column), not in one more round trip.
    `nested`: the array goes into a JSON object built around it (`JSONBuildObject`), as JSON
    rather than as a string holding JSON, so one parse reads both (PostgreSQL; SQLite's
    subquery gives text either way)."""

    function = "JSON_AGG"
    output_field = TextField()

    def __init__(self, *expressions, nested=False, **extra):
        super().__init__(*expressions, **extra)
        self.nested = nested

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = self.as_sql(compiler, connection, **extra)
        return (sql if self.nested else f"{sql}::text"), params

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, function="JSON_GROUP_ARRAY", **extra)


# Django builds JSON on PostgreSQL as `jsonb` (JSONB_BUILD_ARRAY / _OBJECT: parsed into the
# binary form, keys sorted, printed back to text). Rows of ours only travel to Python as text,
# so `json` does: the 100-model search page's statement took 0.95 → 0.65 ms for the newest
# versions' objects alone. Both print the same values; only key order and spacing differ.
class JSONBuildArray(JSONArray):
    """JSONArray built as `json` on PostgreSQL (above); as Django's elsewhere."""

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, function="JSON_BUILD_ARRAY", **extra)


class JSONBuildObject(JSONObject):
    """JSONObject built as `json` on PostgreSQL (above); as Django's elsewhere."""

    def as_postgresql(self, compiler, connection, **extra):
        # The keys are parameters: typed, as Django types them, for server-side binding.
        copy = self.copy()
        copy.set_source_expressions([
            Cast(e, TextField()) if i % 2 == 0 else e for i, e in enumerate(copy.get_source_expressions())
        ])
        return copy.as_sql(compiler, connection, function="JSON_BUILD_OBJECT", **extra)
