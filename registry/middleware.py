from .audit import remote_addr


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
