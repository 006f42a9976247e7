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

A request (GET, `Authorization: Bearer`, PostgreSQL) whose answer is kept — the same token,
path, query and headers — is found by `ReadCacheWSGI` around Django's WSGI application (the
server's path) or else by `ReadCacheMiddleware`, first in `MIDDLEWARE` (the test client's), which
run one statement: the token's user and the snapshot (`BearerTokenAuthentication.with_snapshot`).
A hit answers from memory there, before Django's request handling or the rest of the middleware,
URL resolution and DRF (the headers that middleware added were kept with the answer, and are
sent again); a miss goes on to the view, for the
user found (his token is checked already). One asked for the first time goes to the view at
once, and a view with `cache_reads = True` runs its first read with the token checked in the
read's own statement as every read did before the cache, that statement reading the snapshot
too. Either way a 200 answer is kept under the snapshot of the request's first statement: the
view's later statements see that snapshot or a later one, never an earlier one, so whoever
finds the answer under that snapshot gets rows at least as new as the state he asked in. An
unknown token or an inactive user finds nothing and takes the ordinary path (its 401).

A kept answer that cannot hold, or likely will not, is not probed for: the request goes to the
view as if asked for the first time, one statement in all instead of two (`_Store.may_hold`).
Cannot: a snapshot's xmax (the first transaction not yet completed when it was taken) never goes
down, so once any statement of this process has read a snapshot whose xmax is above a kept
answer's, every later snapshot differs from the one that answer was kept under. So after a
commit, the first request a process probes finds its answer stale and costs the probe and the
read; the others that process is asked, for any kept answer older than what it has seen, cost
the read alone. Likely will not: a request whose last two probes in a row found its answer
stale (commits come between its repetitions: a registry written to all day, or any busy
database on the same server) is computed without the probe from then on, until it is computed
under the very snapshot its answer was kept under (a probe would have found it): then it is
probed for again. (After one stale probe the next is still made: where commits come about as
often as the request, a probe that finds the answer costs less than computing it.) Whether to
probe is only ever a bet on speed; an answer is sent from memory only under the snapshot it
was computed in. A request with `Cache-Control: no-cache` is computed afresh, likewise without
the probe.

Per process, in memory: at most `API_READ_CACHE_ENTRIES` requests and `API_READ_CACHE_MB` of
answers (the least recently used dropped first; either 0 turns the cache off); an answer bigger
than an eighth of that is not kept. Tokens are not kept, only their hash beside the user's id.
Within a transaction that has written (tests), nothing is reused: its own writes do not change
its snapshot. Not on SQLite, which has no snapshot to name.
"""

import threading
from collections import OrderedDict
from contextlib import nullcontext

from django.conf import settings
from django.core.signals import setting_changed
from django.db import close_old_connections, connection
from django.http import HttpResponse

from registry.db import reused_plans
from registry.permissions import UncheckedCaller

from .auth import SNAPSHOT_SQL, BearerTokenAuthentication


class _Store:
    """The request (`_key`: the token's hash, path, query, headers) → (user id, snapshot, body,
    headers); and the highest xmax of any snapshot this process's statements have read (`saw`).
    A snapshot's xmax never goes down, so every later statement's snapshot has an xmax at least
    as high: an answer kept under a lower xmax can never be found again (`may_hold`). Threads
    may race in `saw`; whichever value stays is one that was seen, and so still a bound. (A
    database server swapped under a running process for one with fewer transactions behind it,
    a restore from backup, would leave it above every new answer's xmax: nothing would be
    probed for, so every read computed afresh — slower until the process restarts, never
    stale.) And how many probes in a row found each request's kept answer stale (`_stale`): from
    `STALE_IN_A_ROW` on, it is not probed for until it is computed afresh under the very snapshot
    its kept answer has."""

    def __init__(self):
        self._entries = OrderedDict()
        self._stale = {}  # key of `_entries` → stale probes in a row
        self._bytes = 0
        self._newest = 0
        self._lock = threading.Lock()

    def may_hold(self, key):
        """Whether an answer is kept for `key` that a probe could still find, and fewer than
        `STALE_IN_A_ROW` probes in a row have found it stale."""
        entry = self._entries.get(key)
        return (entry is not None and self._stale.get(key, 0) < STALE_IN_A_ROW
                and _xmax(entry[1]) >= self._newest)

    def saw(self, snapshot):
        xmax = _xmax(snapshot)
        if xmax > self._newest:
            self._newest = xmax

    def get(self, key, user_id, snapshot):
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] != user_id or entry[1] != snapshot:
                self._stale[key] = self._stale.get(key, 0) + 1
                return None
            self._stale.pop(key, None)
            self._entries.move_to_end(key)
            return entry

    def put(self, key, entry, limits):
        with self._lock:
            old = self._entries.get(key)
            if old is not None and old[:2] == entry[:2]:
                self._stale.pop(key, None)  # computed where a probe would have found it: probe again
            self._bytes += len(entry[2]) - (0 if old is None else len(old[2]))
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > limits[0] or self._bytes > limits[1]:
                dropped, (_, _, body, _) = self._entries.popitem(last=False)
                self._stale.pop(dropped, None)
                self._bytes -= len(body)

    def clear(self):
        with self._lock:
            self._entries.clear()
            self._stale.clear()
            self._bytes = 0
            self._newest = 0


# Stale probes in a row after which a request is computed without one (see the module).
STALE_IN_A_ROW = 2

store = _Store()


def _xmax(snapshot):
    """`xmin:xmax:xip,…`, pg_current_snapshot()'s text."""
    return int(snapshot.split(":", 2)[1])


def _limits():
    """(entries, bytes), or None when the cache is off."""
    entries, megabytes = settings.API_READ_CACHE_ENTRIES, settings.API_READ_CACHE_MB
    return (entries, megabytes << 20) if entries > 0 and megabytes > 0 else None


def _clear_on_settings(**kwargs):
    store.clear()  # answers may depend on settings (tests override them)


setting_changed.connect(_clear_on_settings)


class Probe:
    """One request's look at the cache (`request.read_cache`, set by `ReadCacheMiddleware`).
    Asked before (an answer is kept for this request): `user_id` and `snapshot` from the
    probe's statement, `caller()` (user, token) for the view when the kept answer no longer
    holds. Asked for the first time (or its kept answer known stale, or `no-cache`): no
    statement yet (`user_id` None); the view's first read checks the token and reads the
    snapshot in its own statement (`BearerTokenAuthentication.unchecked(snapshot=True)`), and
    `settle` notes that snapshot as seen (`_Store.saw`). `settle(request, response)` after a
    view with `cache_reads` answered marks a 200 to be kept under the snapshot of the request's
    first statement; the middleware keeps it as it leaves, with every header the middleware
    chain added."""

    __slots__ = ("key", "user_id", "snapshot", "_caller", "first_sql")

    def __init__(self, key, user_id=None, snapshot=None, caller=None):
        self.key, self.user_id, self.snapshot, self._caller = key, user_id, snapshot, caller
        self.first_sql = None

    def caller(self):
        """(user, token) the probe's statement checked, or None (asked for the first time)."""
        return None if self._caller is None else self._caller()

    def kept(self):
        """(body, headers) of the kept answer, if the probe found the snapshot it was kept under."""
        if self.user_id is None or self.snapshot is None:
            return None
        entry = store.get(self.key, self.user_id, self.snapshot)
        return None if entry is None else (entry[2], entry[3])

    def answer(self):
        """The kept answer as a response, or None (`kept`)."""
        kept = self.kept()
        return None if kept is None else HttpResponse(kept[0], headers=kept[1])

    def watching(self):
        """Around the view: notes the request's first statement, whose snapshot a first-time
        answer is kept under — only if that statement is the one that read it."""
        return nullcontext() if self.user_id is not None else connection.execute_wrapper(self._note_first)

    def _note_first(self, execute, sql, params, many, context):
        if self.first_sql is None:
            self.first_sql = sql
        return execute(sql, params, many, context)

    def settle(self, request, response):
        """Marks the view's answer (`response.read_cache_keep`) with the user and the snapshot
        of the request's first statement; `ReadCacheMiddleware` decides whether it is kept."""
        if self.user_id is not None:
            user_id, snapshot = self.user_id, self.snapshot
        else:  # the first read's own statement checked the token and read the snapshot
            caller = getattr(request, "user", None)
            row = getattr(caller, "__dict__", {}).get("settled_row") if isinstance(caller, UncheckedCaller) else None
            if not row or not caller.checked or SNAPSHOT_SQL not in (self.first_sql or ""):
                return
            user_id, snapshot = caller.pk, row[-1]
            if snapshot is not None:
                store.saw(snapshot)  # the probe's own snapshot was noted when it was read
        if snapshot is not None:
            response.read_cache_keep = (self.key, user_id, snapshot)


# What else than the token, the path and the query makes a request the same request: the
# server's name and scheme and every header the client sent (the host is checked against
# ALLOWED_HOSTS, the user agent against DISALLOWED_USER_AGENTS). The token is kept only hashed;
# Cache-Control is read, not compared (no-cache computes afresh).
_NOT_COMPARED = frozenset({"HTTP_AUTHORIZATION", "HTTP_CACHE_CONTROL"})


def _key(meta, token):
    return (
        hash(token), meta.get("SCRIPT_NAME", ""), meta.get("PATH_INFO", ""), meta.get("QUERY_STRING", ""),
        meta.get("wsgi.url_scheme"), meta.get("SERVER_NAME"), meta.get("SERVER_PORT"),
        tuple((name, value) for name, value in meta.items() if name[:5] == "HTTP_" and name not in _NOT_COMPARED),
    )


class ReadCacheMiddleware:
    """First in `MIDDLEWARE`: a repeated read whose answer still holds is answered here, before
    the rest of the chain, URL resolution and DRF (one statement, the probe); anything else
    goes on with a `Probe` in `request.read_cache` for the view, and leaves with its answer kept
    if the view marked it (`Probe.settle`). Only GET requests with `Authorization: Bearer`, on
    PostgreSQL, with the cache on (see the module)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limits = _limits()
        if _PROBED in request.META:  # `ReadCacheWSGI` looked already, and found no answer to send
            probe = request.META.pop(_PROBED)
        else:
            probe = _probe(request.META) if limits is not None else None
            answer = probe.answer() if probe is not None else None
            if answer is not None:
                return answer
        if probe is None:
            return self.get_response(request)
        request.read_cache = probe
        response = self.get_response(request)
        keep = getattr(response, "read_cache_keep", None)
        # Only a whole 200 without cookies, and none bigger than an eighth of the store.
        if (keep is not None and response.status_code == 200 and not response.streaming and not response.cookies
                and len(response.content) <= limits[1] // 8):
            key, user_id, snapshot = keep
            store.put(key, (user_id, snapshot, response.content, dict(response.items())), limits)
        return response



def _probe(meta, outside_django=False):
    """The request's `Probe` (`meta`: its WSGI environ), or None when the cache does not apply
    to it (see the module). `outside_django`: called before Django's request handling, so the
    connection is first looked after as Django's request_started would (closed when too old
    or broken), if the probe is to run a statement."""
    if meta.get("REQUEST_METHOD") != "GET" or connection.vendor != "postgresql":
        return None
    auth = BearerTokenAuthentication()
    token = auth.bearer_key_of(meta.get("HTTP_AUTHORIZATION", ""))  # None for pages and HTTP basic
    if token is None:
        return None
    key = _key(meta, token)
    if not store.may_hold(key) or "no-cache" in meta.get("HTTP_CACHE_CONTROL", "").lower():
        return Probe(key)  # computed afresh whatever a probe would find: no probe
    if outside_django:
        close_old_connections()
    with reused_plans():
        found = auth.with_snapshot(token)
    if found is None:
        return None
    user_id, snapshot, user = found
    if snapshot is not None:
        store.saw(snapshot)
    return Probe(key, user_id, snapshot, lambda: (user(), token))


_PROBED = "registry.read_cache.probe"  # the environ key `ReadCacheWSGI` leaves its finding under


class ReadCacheWSGI:
    """Around Django's WSGI application: a repeated read whose kept answer still holds is
    answered here, before Django's request handling — the request object, the request signals,
    the middleware, the response's conversion. That handling cost a kept answer more than the
    rest of it: with gunicorn, a plain WSGI answer takes 0.29 ms back to back, a plain Django
    view 0.50-0.60 ms, a kept answer sent from `ReadCacheMiddleware` 0.78 ms and from here
    0.71 ms (in-process, without the server: 0.20 ms, half of it the probe). Everything else
    goes to Django, with the probe's finding in the environ for `ReadCacheMiddleware` (no second
    probe). As the middleware does, a hit runs one statement (the probe) and sends the status
    and headers the first answer had; the database connection is looked after as Django's
    request signals would (closed when too old or broken, before the probe and after the
    answer). Should the probe fail (the database gone), the request goes to Django, which
    answers the error."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        if _limits() is not None:
            try:
                probe = _probe(environ, outside_django=True)
                kept = probe.kept() if probe is not None else None
            except Exception:  # Django's handling answers the failure, as it would without this
                return self.application(environ, start_response)
            if kept is not None:
                body, headers = kept
                start_response("200 OK", list(headers.items()))
                try:  # and after the request, as Django's request_finished would (DB_CONN_MAX_AGE=0)
                    close_old_connections()
                except Exception:  # the answer is sent; the next request's check closes it
                    pass
                return [body]
            environ[_PROBED] = probe  # None too (no such user, or the cache does not apply)
        return self.application(environ, start_response)
