"""What every MLflow API view shares: where its fields come from, and MLflow's 400 for a write
whose Content-Type is not JSON.

GET reads the query string (repeated parameters for lists); POST, PATCH and DELETE read the
JSON body only (a `?name=` in the query of a write is ignored, never merged). Unknown fields are
ignored, as MLflow does.
"""

from rest_framework.exceptions import UnsupportedMediaType

from registry.errors import InvalidInput, RegistryError

from ..base import ApiView
from ..errors import MLFLOW


class BadRequest(RegistryError):
    error_code = "BAD_REQUEST"
    uc_error_code = "INVALID_ARGUMENT"
    status = 400


class EndpointNotFound(RegistryError):
    error_code = "ENDPOINT_NOT_FOUND"
    uc_error_code = "NOT_FOUND"
    status = 404


def missing(key):
    return InvalidInput(
        f"Missing value for required parameter '{key}'. See the API docs for more information about "
        "request parameters."
    )


def _refuse_nul(value, depth=0):
    """No field anywhere may hold a NUL character (PostgreSQL text cannot store one, and no
    name, tag or description needs it): a 400 before anything is read or written."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidInput("Request fields must not contain NUL characters.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_nul(key, depth + 1)
            _refuse_nul(item, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _refuse_nul(item, depth + 1)


class MlflowView(ApiView):
    error_style = MLFLOW

    def initial(self, request, *args, **kwargs):
        try:
            super().initial(request, *args, **kwargs)
        except UnsupportedMediaType:
            # MLflow answers 400 here (CSRF defence, CVE-2023-43472); the header is never echoed.
            raise BadRequest("Bad Request. Content-Type must be application/json for this request.") from None

    # --- fields -------------------------------------------------------------------------------
    def data(self):
        if not hasattr(self, "_checked_data"):
            data = self.request.query_params if self.request.method == "GET" else self.body()
            _refuse_nul(list(data.lists()) if hasattr(data, "lists") else data)
            self._checked_data = data
        return self._checked_data

    def get_list(self, key):
        data = self.data()
        if hasattr(data, "getlist"):
            return [v for v in data.getlist(key) if v != ""]
        value = data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise InvalidInput(f"Parameter '{key}' must be a list.")
        return value

    def text(self, key, required=True, default=""):
        value = self.data().get(key)
        if value is None or value == "":
            if required:
                raise missing(key)
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise InvalidInput(f"Parameter '{key}' must be a string.")
        return str(value)

    def raw(self, key, default=None):
        return self.data().get(key, default)
