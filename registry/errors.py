"""Domain errors. Each carries the MLflow error code and HTTP status it maps to; the API and
the pages translate them, the domain never deals in HTTP."""


class RegistryError(Exception):
    error_code = "INTERNAL_ERROR"
    uc_error_code = "INTERNAL_ERROR"
    status = 500

    def __init__(self, message, *, field=None):
        super().__init__(message)
        self.message = message
        self.field = field  # the parameter the error is about, when the raiser knows it


class InvalidInput(RegistryError):
    error_code = "INVALID_PARAMETER_VALUE"
    uc_error_code = "INVALID_ARGUMENT"
    status = 400


class NotFound(RegistryError):
    """The object does not exist, or the user may not see it: the two look the same."""

    error_code = "RESOURCE_DOES_NOT_EXIST"
    uc_error_code = "NOT_FOUND"
    status = 404


class AlreadyExists(RegistryError):
    error_code = "RESOURCE_ALREADY_EXISTS"
    uc_error_code = "ALREADY_EXISTS"
    status = 400
    uc_status = 409


class Forbidden(RegistryError):
    """Visible but not allowed; the message names the missing privilege."""

    error_code = "PERMISSION_DENIED"
    uc_error_code = "PERMISSION_DENIED"
    status = 403

    def __init__(self, message, missing=()):
        super().__init__(message)
        self.missing = tuple(missing)
