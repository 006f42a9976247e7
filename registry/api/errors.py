"""One error mechanism for every API under /api/: `{"error_code": ..., "message": ...}`.

The domain raises `registry.errors.RegistryError` subclasses; DRF raises its own exceptions
(bad JSON, wrong Content-Type, unauthenticated, throttled…). `api_exception_handler` (set as
REST_FRAMEWORK["EXCEPTION_HANDLER"]) turns both into the same JSON shape. Only the vocabulary
differs between the two APIs, so each API is an `ErrorStyle`:

- `UC` — Unity Catalog codes: NOT_FOUND 404, ALREADY_EXISTS 409, INVALID_ARGUMENT 400,
  PERMISSION_DENIED 403, UNAUTHENTICATED 401 (domain errors: `exc.uc_error_code`,
  `exc.uc_status` falling back to `exc.status`);
- `MLFLOW` — MLflow codes: RESOURCE_DOES_NOT_EXIST 404, RESOURCE_ALREADY_EXISTS 400,
  INVALID_PARAMETER_VALUE 400… (domain errors: `exc.error_code`, `exc.status`).

A view picks its style with the class attribute `error_style` (see `registry.api.base.ApiView`;
the default is MLFLOW). Nothing else is needed: raise domain errors, let DRF raise its own.
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from registry.errors import RegistryError

from .parsers import PayloadTooLarge


@dataclass(frozen=True)
class ErrorStyle:
    name: str
    code_attr: str  # attribute of a RegistryError holding this style's code
    status_attr: str  # attribute holding this style's HTTP status (falls back to `status`)
    codes: dict = field(default_factory=dict)  # HTTP status → code, for errors not from the domain
    fallback: str = "INTERNAL_ERROR"

    def for_domain(self, exc):
        status = getattr(exc, self.status_attr, None) or exc.status
        return status, getattr(exc, self.code_attr, None) or self.code_for_status(status)

    def code_for_status(self, status):
        return self.codes.get(status) or self.codes.get(status // 100 * 100) or self.fallback


UC = ErrorStyle(
    "uc",
    code_attr="uc_error_code",
    status_attr="uc_status",
    codes={
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        405: "BAD_REQUEST",
        409: "ALREADY_EXISTS",
        413: "INVALID_ARGUMENT",
        415: "INVALID_ARGUMENT",
        429: "REQUEST_LIMIT_EXCEEDED",
        500: "INTERNAL_ERROR",
    },
)
MLFLOW = ErrorStyle(
    "mlflow",
    code_attr="error_code",
    status_attr="status",
    codes={
        400: "INVALID_PARAMETER_VALUE",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "RESOURCE_DOES_NOT_EXIST",
        405: "BAD_REQUEST",
        413: "INVALID_PARAMETER_VALUE",
        415: "BAD_REQUEST",
        429: "REQUEST_LIMIT_EXCEEDED",
        500: "INTERNAL_ERROR",
    },
)


class EndpointNotFound(RegistryError):
    """No route: MLflow's ENDPOINT_NOT_FOUND, Unity Catalog's NOT_FOUND."""

    error_code = "ENDPOINT_NOT_FOUND"
    uc_error_code = "NOT_FOUND"
    status = 404


def error_response(style, status, message, code=None, headers=None):
    """The one place the error body is built; also for views that answer an error directly."""
    return Response(
        {"error_code": code or style.code_for_status(status), "message": str(message)},
        status=status,
        headers=headers,
    )


def _message(detail):
    """A DRF `detail` (string, list or {field: [messages]}) as one readable sentence."""
    if isinstance(detail, dict):
        parts = []
        for key, value in detail.items():
            text = _message(value)
            parts.append(text if key == "non_field_errors" else f"{key}: {text}")
        return " ".join(parts)
    if isinstance(detail, list):
        return " ".join(_message(item) for item in detail)
    return str(detail)


def style_of(context):
    return getattr((context or {}).get("view"), "error_style", None) or MLFLOW


def api_exception_handler(exc, context):
    style = style_of(context)
    if isinstance(exc, RegistryError):
        set_rollback()
        status, code = style.for_domain(exc)
        return error_response(style, status, exc.message, code)
    if isinstance(exc, RequestDataTooBig):  # raised by Django when DRF reads the body
        exc = PayloadTooLarge(f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.")
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: Django's 500 handling logs and reports it
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = "%d" % exc.wait
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        message = _message(exc.detail)
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        # DRF's own message echoes the Content-Type header (CVE-2023-6568): never echo it.
        message = "Content-Type must be application/json."
    elif isinstance(exc, exceptions.MethodNotAllowed):
        message = "This endpoint does not accept this HTTP method."
    else:
        message = _message(exc.detail)
    set_rollback()
    return error_response(style, exc.status_code, message, headers=headers)
