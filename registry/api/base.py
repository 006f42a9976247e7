"""What every API view shares: strict JSON in, the `{"error_code", "message"}` error shape out.

`ApiView` (MLflow error codes) and `registry.api.uc.views.UCView` (Unity Catalog codes) differ
only in `error_style`. Writes (POST, PUT, PATCH, DELETE) carrying a body must say
`Content-Type: application/json` (CSRF defence, CVE-2023-43472) and send one JSON object;
their fields come from that body only, never from the query string.
"""

from drf_spectacular.utils import extend_schema
from django.db import connection
from rest_framework.exceptions import AuthenticationFailed, UnsupportedMediaType
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from registry.errors import InvalidInput
from registry.permissions import UncheckedCaller

from .auth import BearerTokenAuthentication

from .errors import MLFLOW, EndpointNotFound
from .parsers import StrictJSONParser
from .renderers import SafeJSONRenderer

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _has_body(request):
    meta = request.META
    if meta.get("HTTP_TRANSFER_ENCODING"):
        return True
    try:
        return int(meta.get("CONTENT_LENGTH") or 0) > 0
    except ValueError:
        return True


class JSONOnly(DefaultContentNegotiation):
    """Every answer is JSON, whatever the client's Accept header says, as MLflow's server does
    (DRF's default negotiation parsed the header on every call to pick the only renderer there
    is, and answered 406 to an Accept without JSON). Request bodies: DRF's own choice."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ApiView(APIView):
    error_style = MLFLOW
    # GET answers reused while the database is unchanged (`read_cache`): the registry's reads.
    cache_reads = False
    # Both are also the project defaults; explicit here for readers.
    parser_classes = [StrictJSONParser]
    renderer_classes = [SafeJSONRenderer]
    content_negotiation_class = JSONOnly

    def dispatch(self, request, *args, **kwargs):
        probe = getattr(request, "read_cache", None) if self.cache_reads else None
        if probe is None:
            return super().dispatch(request, *args, **kwargs)
        with probe.watching():
            response = super().dispatch(request, *args, **kwargs)
        probe.settle(request, response)
        return response

    def perform_authentication(self, request):
        """A Bearer token, on PostgreSQL: the first read of the request checks the token in its
        own statement (`BearerTokenAuthentication.unchecked`, `permissions.UncheckedCaller`),
        one round trip fewer. Writes too: every write reads the object it changes (folded) or
        asks the caller's privileges (`permissions.require`, which checks the token on its
        own) before it changes anything, and an unchecked caller whose token failed raises 401
        at whatever touches him. No answer leaves before the token is checked
        (`finalize_response`): a bad one is a 401 whatever the view answered, as if it had
        been checked first. A caller the read cache's probe found (`read_cache`) is checked
        already."""
        probe = getattr(request._request, "read_cache", None) if self.cache_reads else None
        checked = probe.caller() if probe is not None else None
        if checked is not None:
            request.user, request.auth = checked
            return
        authenticators = request.authenticators
        if authenticators and connection.vendor == "postgresql":
            first = authenticators[0]
            found = (first.unchecked(request, snapshot=probe is not None)
                     if isinstance(first, BearerTokenAuthentication) else None)
            if found is not None:
                request.user, request.auth = found
                return
        super().perform_authentication(request)

    def get_permissions(self):
        # IsAuthenticated holds for an unchecked caller by the time anything is answered (and
        # asking it would check the token on its own).
        permissions = super().get_permissions()
        if self._unchecked(getattr(self, "request", None)):
            return [p for p in permissions if not isinstance(p, IsAuthenticated)]
        return permissions

    def finalize_response(self, request, response, *args, **kwargs):
        if self._unchecked(request):  # the view answered without a query that checked it
            try:
                request.user.resolve()
            except AuthenticationFailed as failed:
                response = self.handle_exception(failed)
        return super().finalize_response(request, response, *args, **kwargs)

    @staticmethod
    def _unchecked(request):
        caller = getattr(request, "_user", None)
        return isinstance(caller, UncheckedCaller) and not caller.checked

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication (401) and throttling first
        if request.method in WRITE_METHODS and _has_body(request):
            content_type = (request._request.content_type or "").lower()
            if content_type != "application/json":
                raise UnsupportedMediaType(content_type)

    def body(self):
        """The JSON object a write sent ({} when it sent nothing)."""
        data = self.request.data
        if not isinstance(data, dict):
            raise InvalidInput("The request body must be a JSON object.")
        return data


@extend_schema(exclude=True)
class EndpointNotFoundView(ApiView):
    """The last route of an API: a JSON 404 in the API's style instead of an HTML page.
    `EndpointNotFoundView.as_view(error_style=UC)` for the Unity Catalog API."""

    def _answer(self, request, *args, **kwargs):
        raise EndpointNotFound(f"No API endpoint {request.method[:10]} {request.path[:200]}.")

    get = post = put = patch = delete = _answer
