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
