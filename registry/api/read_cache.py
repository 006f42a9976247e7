"""Answers to repeated API reads, reused only while the database is exactly as it was.

A model server polling `models:/name@champion`, a batch job reading the same version a thousand
times: most registry reads repeat. On PostgreSQL, `pg_current_snapshot()` names what a statement
sees — which transactions are committed. Two statements with the same snapshot see the same rows
in every table: the same models, versions, tags, aliases, owners, grants, group memberships and
users. So an answer computed for a user while the database was in snapshot S is still the right
answer for that user, to the same request, in any later statement whose snapshot is S; once any
transaction commits (a write, a grant, a revoke, anywhere in the database), the snapshot differs
and the answer is computed afresh. Nothing is remembered across a change, so a revoked grant
takes effect at once, as it does without the cache: no timeout, no invalidation to forget.

A request (GET, `Authorization: Bearer`, PostgreSQL, a view with `cache_reads = True`) whose
answer is kept (same token, path and query) first runs one statement: the token's user and the
snapshot (`BearerTokenAuthentication.with_snapshot`). A hit answers from memory; a miss runs the
view as usual for the user found (his token is checked already). One asked for the first time
runs the view at once, its token checked in the read's own statement as every read did before
the cache, that statement reading the snapshot too. Either way a 200 answer is kept under the
snapshot of the request's first statement: the view's later statements see that snapshot or a
later one, never an earlier one, so whoever finds the answer under that snapshot gets rows at
least as new as the state he asked in. An unknown token or an inactive user finds nothing and
takes the ordinary path (its 401).

Per process, in memory: at most `API_READ_CACHE_ENTRIES` requests and `API_READ_CACHE_MB` of
answers (the least recently used dropped first; either 0 turns the cache off); an answer bigger
than an eighth of that is not kept. Tokens are not kept, only their hash beside the user's id.
A request with `Cache-Control: no-cache` is computed afresh. Within a transaction that has
written (tests), nothing is reused: its own writes do not change its snapshot. Not on SQLite,
which has no snapshot to name.
"""

import threading
from collections import OrderedDict
from contextlib import nullcontext

from django.conf import settings
from django.core.signals import setting_changed
from django.db import connection
from django.http import HttpResponse

from registry.permissions import UncheckedCaller

from .auth import SNAPSHOT_SQL, BearerTokenAuthentication


class _Store:
    """(token hash, path) → (user id, snapshot, body, headers)."""

    def __init__(self):
        self._entries = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __contains__(self, key):
        return key in self._entries

    def get(self, key, user_id, snapshot):
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != user_id or entry[1] != snapshot:
                return None
            self._entries.move_to_end(key)
            return entry

    def put(self, key, entry, limits):
        with self._lock:
            old = self._entries.get(key)
            self._bytes += len(entry[2]) - (0 if old is None else len(old[2]))
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > limits[0] or self._bytes > limits[1]:
                self._bytes -= len(self._entries.popitem(last=False)[1][2])

    def clear(self):
        with self._lock:
            self._entries.clear()
            self._bytes = 0


store = _Store()


def _limits():
    """(entries, bytes), or None when the cache is off."""
    entries, megabytes = settings.API_READ_CACHE_ENTRIES, settings.API_READ_CACHE_MB
    return (entries, megabytes << 20) if entries > 0 and megabytes > 0 else None


def _clear_on_settings(**kwargs):
    store.clear()  # answers may depend on settings (tests override them)


setting_changed.connect(_clear_on_settings)


class Probe:
    """One request's look at the cache. Asked before (an answer is kept for this token, path
    and query): `user_id` and `snapshot` from the probe's statement, `answer()` the kept answer
    if it still holds, else `caller()` (user, token) for the view. Asked for the first time: no
    statement yet (`user_id` None); the view's first read checks the token and reads the
    snapshot in its own statement (`BearerTokenAuthentication.unchecked(snapshot=True)`).
    `keep(request, response)` after the view answered: a 200 under the snapshot of the
    request's first statement."""

    __slots__ = ("key", "user_id", "snapshot", "_caller", "fresh", "first_sql")

    def __init__(self, key, user_id=None, snapshot=None, caller=None, fresh=False):
        self.key, self.user_id, self.snapshot, self._caller, self.fresh = key, user_id, snapshot, caller, fresh
        self.first_sql = None

    def caller(self):
        """(user, token) the probe's statement checked, or None (asked for the first time)."""
        return None if self._caller is None else self._caller()

    def answer(self):
        if self.user_id is None or self.fresh or self.snapshot is None:
            return None
        entry = store.get(self.key, self.user_id, self.snapshot)
        if entry is None:
            return None
        response = HttpResponse(entry[2])
        for name, value in entry[3]:
            response[name] = value
        return response

    def watching(self):
        """Around the view: notes the request's first statement, whose snapshot a first-time
        answer is kept under — only if that statement is the one that read it."""
        return nullcontext() if self.user_id is not None else connection.execute_wrapper(self._note_first)

    def _note_first(self, execute, sql, params, many, context):
        if self.first_sql is None:
            self.first_sql = sql
        return execute(sql, params, many, context)

    def keep(self, request, response):
        limits = _limits()
        if limits is None or response.status_code != 200 or getattr(response, "streaming", False):
            return
        if self.user_id is not None:
            user_id, snapshot = self.user_id, self.snapshot
        else:  # the first read's own statement checked the token and read the snapshot
            caller = getattr(request, "user", None)
            row = getattr(caller, "__dict__", {}).get("settled_row") if isinstance(caller, UncheckedCaller) else None
            if not row or not caller.checked or SNAPSHOT_SQL not in (self.first_sql or ""):
                return
            user_id, snapshot = caller.pk, row[-1]
        if snapshot is None:
            return
        if callable(getattr(response, "render", None)):
            response.render()  # idempotent: Django's handler finds it rendered
        if len(response.content) <= limits[1] // 8:
            store.put(self.key, (user_id, snapshot, response.content, tuple(response.items())), limits)


def probe(request):
    """A `Probe` for this request, or None where the cache does not apply (see the module)."""
    limits = _limits()
    if request.method != "GET" or limits is None or connection.vendor != "postgresql":
        return None
    auth = BearerTokenAuthentication()
    token = auth.bearer_key(request)
    if token is None:
        return None
    key = (hash(token), request.get_full_path())
    if key not in store:
        return Probe(key)
    found = auth.with_snapshot(token)
    if found is None:
        return None
    user_id, snapshot, user = found
    fresh = "no-cache" in request.headers.get("Cache-Control", "").lower()
    return Probe(key, user_id, snapshot, lambda: (user(), token), fresh)
