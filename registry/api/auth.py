"""Who is calling the API: `Authorization: Bearer <token>` (MLFLOW_TRACKING_TOKEN; tokens from
`manage.py create_api_token`) or HTTP basic (MLFLOW_TRACKING_USERNAME/PASSWORD). Never the
session cookie: /api/ has no CSRF protection, so a cookie must not authenticate there.

Repeated wrong passwords lock the username out for a while: after `API_LOGIN_FAILURE_LIMIT`
(10) failures within `API_LOGIN_FAILURE_WINDOW` (900) seconds, basic auth for that username
answers 429 without checking the password; tokens keep working. The client address is locked
out the same way after `API_LOGIN_FAILURE_LIMIT_PER_ADDRESS` (100) failures, against password
spraying — set it high behind a proxy, where every client shares the proxy's address. The counters live in Django's cache (per process
with the default local-memory cache; configure a shared cache for several web processes).
`login_guard` is usable by any other login form too.
"""

import hashlib
from functools import lru_cache, partial

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import router
from rest_framework import HTTP_HEADER_ENCODING
from rest_framework.authentication import BasicAuthentication, TokenAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, Throttled


# What a statement sees, named (`api.read_cache`); NULL inside a transaction that has written.
SNAPSHOT_SQL = "CASE WHEN txid_current_if_assigned() IS NULL THEN pg_current_snapshot()::text END"


class BearerTokenAuthentication(TokenAuthentication):
    """`Authorization: Bearer <token>`, which is what MLFLOW_TRACKING_TOKEN sends.

    Every API call starts here: the token and its user are read by SQL compiled once
    (`registry.db.compiled_rows`) instead of DRF's lookup, which Django assembled anew on each
    call — or, on PostgreSQL, by the statement of the request's first read itself (`unchecked`). Same rule as DRF's: an unknown token or an inactive user is refused."""

    keyword = "Bearer"

    # The user's fields the API reads; the others (password hash, e-mail, dates) stay deferred:
    # Django loads them if anything ever asks. Fewer columns, no timestamps to convert.
    USER_FIELDS = ("id", "username", "is_active", "is_superuser", "is_staff")

    def authenticate_credentials(self, key):
        return self._user_from(self._row(key)), key  # request.auth: the key

    def unchecked(self, request, snapshot=False):
        """(caller, token) for a request with a well-formed `Bearer <token>` header, as DRF's
        `authenticate` gives (user, auth), the caller an `UncheckedCaller` whose token the
        read's own statement checks (`permissions.compiled_for`); None otherwise (DRF's path
        then answers the precise 401). `snapshot`: that statement also reads PostgreSQL's
        snapshot (`api.read_cache`), the last column of the caller's `settled_row`."""
        from registry.permissions import UncheckedCaller

        key = self.bearer_key(request)
        if key is None:
            return None
        return UncheckedCaller(
            lambda: self.authenticate_credentials(key)[0], self._query(key, snapshot, groups=True), self._user_from,
            in_groups=self._in_groups, solo_key=hash(key)), key

    def with_snapshot(self, key):
        """(user id, snapshot, user) for a good token, in one statement: the token's user and
        PostgreSQL's `pg_current_snapshot()` (`api.read_cache`), the snapshot None inside a
        transaction that has written; `user()` builds the user, only when the answer is not
        kept. None for an unknown token or an inactive user: the ordinary path answers those."""
        row = self._row(key, snapshot=True)
        try:
            self._refuse(row)
        except AuthenticationFailed:
            return None
        return row[0], row[-1], lambda: self._user_from(row)

    def _row(self, key, snapshot=False):
        """The token's query's row (`_query`) as a list, or None."""
        from registry.db import compiled_rows

        name, build, values = self._query(key, snapshot)
        rows = compiled_rows(name, build, using=router.db_for_read(self.get_model()), **values)
        return [*rows[0].values()] if rows else None

    def bearer_key(self, request):
        """The token of a well-formed `Authorization: Bearer <token>` header, or None."""
        return self.bearer_key_of(get_authorization_header(request))

    def bearer_key_of(self, header):
        """`bearer_key` of the header's value (bytes, or text as in a WSGI environ)."""
        if isinstance(header, str):
            header = header.encode(HTTP_HEADER_ENCODING)
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != self.keyword.lower().encode():
            return None
        try:
            return parts[1].decode()
        except UnicodeError:
            return None

    def _query(self, key, snapshot=False, groups=False):
        """(key, build, values) of the token's query: its user's `_fields()`, id first;
        `groups`: then whether he belongs to any group (`_in_groups`); `snapshot`: and, last,
        PostgreSQL's snapshot (None inside a transaction that has written, whose own writes do
        not change it). `build` runs only when the SQL is first compiled."""
        name = "api-token" + ("-groups" if groups else "") + ("-snapshot" if snapshot else "")
        return (name,), partial(self._token_query, groups=groups, snapshot=snapshot), {"key": str(key)}

    def _token_query(self, key, groups=False, snapshot=False):
        from django.db.models import OuterRef
        from django.db.models.expressions import RawSQL

        from registry.permissions import in_any_group

        more = {}
        if groups:
            more["in_groups"] = in_any_group(OuterRef("user_id"))
        if snapshot:
            more["snapshot"] = RawSQL(SNAPSHOT_SQL, ())
        return self.get_model().objects.filter(key=key).values(*(f"user__{f}" for f in self._fields()), **more)

    def _in_groups(self, row):
        """Whether the user of a `_query(…, groups=True)` row belongs to any group."""
        return bool(row[len(self._fields())])

    def _fields(self):
        # In the model's order, as from_db takes them (the id first).
        return _user_fields(get_user_model(), self.USER_FIELDS)

    def _user_from(self, row):
        """The user of the token's query's row (its columns in `_fields()` order, then perhaps
        the snapshot), or raises DRF's AuthenticationFailed as `authenticate_credentials`
        always has."""
        self._refuse(row)
        fields = self._fields()
        return get_user_model().from_db(router.db_for_read(self.get_model()), fields, row[:len(fields)])

    def _refuse(self, row):
        """DRF's rule, from the row alone: no such token, or its user is inactive."""
        if row is None:
            raise AuthenticationFailed("Invalid token.")
        if not row[self._fields().index("is_active")]:
            raise AuthenticationFailed("User inactive or deleted.")


@lru_cache(maxsize=None)
def _user_fields(model, wanted):
    return [f.attname for f in model._meta.concrete_fields if f.attname in wanted]


class LoginGuard:
    """Counts failed logins per username and per client address, over a window that starts at
    the first failure."""

    def _window(self):
        return getattr(settings, "API_LOGIN_FAILURE_WINDOW", 900)

    def _limits(self):
        return (getattr(settings, "API_LOGIN_FAILURE_LIMIT", 10), getattr(settings, "API_LOGIN_FAILURE_LIMIT_PER_ADDRESS", 100))

    def _keys(self, username, address):
        digest = hashlib.sha256((username or "").lower().encode("utf-8", "replace")).hexdigest()
        return [f"login-failures:user:{digest}", f"login-failures:addr:{address or '-'}"]

    def check(self, username, address):
        """Raise Throttled while either the username or the address is locked out."""
        for key, limit in zip(self._keys(username, address), self._limits()):
            if (cache.get(key) or 0) >= limit:
                raise Throttled(wait=self._window(), detail="Too many failed logins; try again later.")

    def failed(self, username, address):
        window = self._window()
        for key in self._keys(username, address):
            if not cache.add(key, 1, timeout=window):
                try:
                    cache.incr(key)
                except ValueError:  # expired between add and incr
                    cache.add(key, 1, timeout=window)

    def succeeded(self, username, address):
        cache.delete(self._keys(username, address)[0])


login_guard = LoginGuard()


class GuardedBasicAuthentication(BasicAuthentication):
    """HTTP basic with `login_guard`: a locked-out username or address gets 429 before any
    password is checked."""

    def authenticate_credentials(self, userid, password, request=None):
        address = request.META.get("REMOTE_ADDR") if request is not None else None
        login_guard.check(userid, address)
        try:
            result = super().authenticate_credentials(userid, password, request)
        except AuthenticationFailed:
            login_guard.failed(userid, address)
            raise
        login_guard.succeeded(userid, address)
        return result


# The OpenAPI schema describes it as plain HTTP basic (drf-spectacular finds extensions by class).
from drf_spectacular.authentication import BasicScheme  # noqa: E402


class GuardedBasicScheme(BasicScheme):
    target_class = GuardedBasicAuthentication
