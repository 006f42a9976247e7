from django.conf import settings
from django.core.handlers.base import BaseHandler
from django.middleware.common import CommonMiddleware
from django.test.utils import override_settings

from .audit import remote_addr


class ApiMiddleware:
    """Requests under /api/ go through `settings.API_MIDDLEWARE` instead of the rest of
    `MIDDLEWARE`: sessions, CSRF, messages, htmx, static files and django-csp (which builds its
    policy on every response) serve pages; the API (token or basic auth, JSON only) uses none of
    them, and they were a fifth of the Python time of an MLflow read (benchmarks/RESULTS.md,
    round 6). In `MIDDLEWARE` right after the read cache's (`api.read_cache`), which answers a
    repeated MLflow read before any of this. The API's answers get one fixed policy that forbids
    rendering them as a document.

    The API's chain is built by Django's own handler from that list, once per process, and
    ends in the same view resolution as the pages' chain."""

    API_CSP = "default-src 'none'; frame-ancestors 'none'"

    def __init__(self, get_response):
        self.get_response = get_response
        handler = BaseHandler()
        with override_settings(MIDDLEWARE=settings.API_MIDDLEWARE):
            handler.load_middleware()
        self.api_chain = handler._middleware_chain  # what BaseHandler.get_response calls

    def __call__(self, request):
        if not request.path_info.startswith("/api/"):
            return self.get_response(request)
        response = self.api_chain(request)
        response.headers.setdefault("Content-Security-Policy", self.API_CSP)
        return response


class ApiCommonMiddleware(CommonMiddleware):
    """Django's CommonMiddleware for the API (`settings.API_MIDDLEWARE`): the host checked
    against ALLOWED_HOSTS, DISALLOWED_USER_AGENTS, without looking for a slash to append. Under
    /api/ that search could never redirect (the API's last route takes every path, so every path
    is valid as it is), but it resolved the URL once more for each 404 — every "not found" an
    MLflow client gets: 13 % of such an answer's time, in-process."""

    def should_redirect_with_slash(self, request):
        return False


class AuditContextMiddleware:
    """Remembers the client address for the audit events this request writes."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = remote_addr.set(request.META.get("REMOTE_ADDR"))
        try:
            return self.get_response(request)
        finally:
            remote_addr.reset(token)


class ReusedPlansMiddleware:
    """GET and HEAD requests — pages and API reads alike — run their queries as prepared
    statements on PostgreSQL (`registry.db.reused_plans`): their permission filters are the
    same SQL request after request, and for a user who is not a superuser PostgreSQL spent
    longer planning them than running them. Only plans are reused, never
    results (tests/test_prepared_permissions.py); writes are left as they are."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.db import connection

        # Not on a connection this request would be the first to open (a GET that reads
        # nothing must not open one): connections persist (DB_CONN_MAX_AGE), so that is rare.
        if request.method not in ("GET", "HEAD") or connection.connection is None:
            return self.get_response(request)
        from .db import reused_plans

        with reused_plans():
            return self.get_response(request)
