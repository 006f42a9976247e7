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

A request (GET, `Authorization: Bearer`, PostgreSQL, a view with `cache_reads = True`) asked
before with the same token, path and query first runs one statement: the token's user and the
snapshot (`BearerTokenAuthentication.with_snapshot`); one asked for the first time takes the
ordinary path, its token checked in the read's own statement, as every read did before the
cache. An unknown token or an inactive user finds nothing and takes the ordinary path (its
401). A hit answers from memory; a miss runs the view as usual for the user found (his token is
checked already) and keeps a 200 answer under the snapshot the request began with: the view's
own statements see that snapshot or a later one, never an earlier one, so whoever finds the
answer under that snapshot gets rows at least as new as the state he asked in.

Per process, in memory: at most `API_READ_CACHE_ENTRIES` requests and `API_READ_CACHE_MB` of
answers (the least recently used dropped first; either 0 turns the cache off); an answer bigger
than an eighth of that is not kept. Tokens are not kept, only their hash beside the user's id.
A request with `Cache-Control: no-cache` is computed afresh. Within a transaction that has
written (tests), nothing is reused: its own writes do not change its snapshot. Not on SQLite,
which has no snapshot to name.
"""

import threading
from collections import OrderedDict

from django.conf import settings
from django.core.signals import setting_changed
from django.db import connection
from django.http import HttpResponse

from .auth import BearerTokenAuthentication


class _Store:
    """(token hash, path) → (user id, snapshot, body, headers), or None: asked once, not kept yet."""

    def __init__(self):
        self._entries = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def asked_before(self, key, limits):
        """Whether `key` was asked before; notes it if not."""
        with self._lock:
            if key in self._entries:
                return True
            self._entries[key] = None
            self._trim(*limits)
            return False

    def get(self, key, user_id, snapshot):
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != user_id or entry[1] != snapshot:
                return None
            self._entries.move_to_end(key)
            return entry

    def put(self, key, entry, limits):
        with self._lock:
            self._bytes += len(entry[2]) - self._size(self._entries.get(key))
            self._entries[key] = entry
            self._entries.move_to_end(key)
            self._trim(*limits)

    @staticmethod
    def _size(entry):
        return 0 if entry is None else len(entry[2])

    def _trim(self, entries, max_bytes):
        while len(self._entries) > entries or self._bytes > max_bytes:
            self._bytes -= self._size(self._entries.popitem(last=False)[1])

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
    """One request's look at the cache: `answer()` the kept answer or None; `keep(response)`
    after the view answered. `caller`: (user, token) the ordinary path authenticates with."""

    __slots__ = ("key", "user_id", "snapshot", "caller", "fresh")

    def __init__(self, key, snapshot, caller, fresh):
        self.key, self.snapshot, self.caller, self.fresh = key, snapshot, caller, fresh
        self.user_id = caller[0].pk

    def answer(self):
        if self.fresh or self.snapshot is None:
            return None
        entry = store.get(self.key, self.user_id, self.snapshot)
        if entry is None:
            return None
        response = HttpResponse(entry[2])
        for name, value in entry[3]:
            response[name] = value
        return response

    def keep(self, response):
        limits = _limits()
        if limits is None or self.snapshot is None or response.status_code != 200 or getattr(response, "streaming", False):
            return
        if callable(getattr(response, "render", None)):
            response.render()  # idempotent: Django's handler finds it rendered
        content = response.content
        if len(content) <= limits[1] // 8:
            store.put(self.key, (self.user_id, self.snapshot, content, tuple(response.items())), limits)


def probe(request):
    """A `Probe` for this request, or None where the cache does not apply (see the module). A
    request asked for the first time (this token, this path and query) takes the ordinary path,
    its token checked in the read's own statement: only a repeated one pays for the probe."""
    limits = _limits()
    if request.method != "GET" or limits is None or connection.vendor != "postgresql":
        return None
    auth = BearerTokenAuthentication()
    token = auth.bearer_key(request)
    if token is None:
        return None
    key = (hash(token), request.get_full_path())
    if not store.asked_before(key, limits):
        return None
    found = auth.with_snapshot(token)
    if found is None:
        return None
    user, snapshot = found
    fresh = "no-cache" in request.headers.get("Cache-Control", "").lower()
    return Probe(key, snapshot, (user, token), fresh)
