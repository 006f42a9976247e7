"""Queries that PostgreSQL plans once per connection.

Our permission filters are EXISTS subqueries over three levels of grants and owners: cheap to
run (well under a millisecond) but ~5–15 ms for PostgreSQL to plan, on every request, because
Django binds parameters on the client, so every query is new to the server. Inside
`reused_plans()`, queries are bound server-side and prepared: psycopg keeps the prepared
statement per connection, PostgreSQL switches to one generic plan after five runs, and later
runs skip planning. Only the queries run inside the block are prepared; Django's cursor wrapper
still counts, logs and maps errors. On SQLite, or with DB_PREPARED_STATEMENTS=false (settings.py:
poolers in transaction mode), the block changes nothing.
"""

from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections

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
