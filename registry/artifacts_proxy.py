"""The MLflow artifact proxy's domain (`/api/2.0/mlflow-artifacts/artifacts/<path>`): which stored
file a proxy path names, and whether the caller may read or write it.

A proxy path is one of
    <experiment_id>/<run_id>/artifacts[/<file>]                 a run's artifacts
    <experiment_id>/models/<model_id>/artifacts[/<file>]        a logged model's artifacts
    registered-models/<catalog.schema.model>/<version>[/<file>] a version's files (read only)
and is stored under `mlartifacts/…` (the first two) or `registry/versions/<id>/…` (the last).

Refused with 400 (BAD_INPUTS.md "Artifact paths"), after URL-decoding until stable (≤ 10 rounds):
`..` or `.` segments, absolute paths, drive letters, backslashes, NUL and control characters,
anything else than the three shapes above, and — on a filesystem store — a path whose real
location (symlinks resolved) is outside the artifact root. Reading needs to see the run, logged
model or version (404 otherwise); writing needs to own the run or logged model (403).
"""

import os
import re
from dataclasses import dataclass
from urllib.parse import unquote

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage

from . import names, selectors, storage, tracking
from .errors import Forbidden, InvalidInput, NotFound, RegistryError
from .permissions import tracking_require_write

VERSIONS_NAMESPACE = "registered-models"
_DRIVE_RE = re.compile(r"^[A-Za-z]:")


class TooLarge(RegistryError):
    error_code = "INVALID_PARAMETER_VALUE"
    uc_error_code = "INVALID_ARGUMENT"
    status = 413


def _too_large(limit):
    return TooLarge(f"The artifact is larger than this server accepts ({limit} bytes, MLFLOW_ARTIFACT_MAX_BYTES).")


@dataclass
class Location:
    root: str  # storage-relative directory of the run / logged model / version
    rel: str  # below root ("" for the root itself)

    @property
    def path(self):
        return f"{self.root}/{self.rel}" if self.rel else self.root


def _bad(path, why):
    return InvalidInput(f"Invalid artifact path {path[:300]!r}: {why}.")


def clean(path):
    """Decoded path segments; raises InvalidInput for anything unsafe."""
    if not isinstance(path, str) or not path.strip("/"):
        raise InvalidInput("The artifact path must not be empty.")
    text = path
    for _ in range(10):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    else:
        raise _bad(path, "it is encoded too many times")
    for candidate in (path, text):
        if "\\" in candidate or any(ord(c) < 32 or ord(c) == 127 for c in candidate):
            raise _bad(path, "it contains a backslash, NUL or control character")
        if candidate.startswith("/") or _DRIVE_RE.match(candidate):
            raise _bad(path, "it must be relative")
    parts = text.rstrip("/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise _bad(path, "it must not contain '..', '.' or empty segments")
    if any(":" in p for p in parts[:1]):
        raise _bad(path, "it is not an artifact location")
    return parts


def locate(user, path, *, write=False):
    """The `Location` of a proxy path for `user` (reading, or writing when `write`)."""
    parts = clean(path)
    if parts[0] == VERSIONS_NAMESPACE:
        if len(parts) < 3:
            raise _bad(path, "name a model and a version")
        if write:
            raise Forbidden("A registered version's files are read-only; log artifacts to a run or logged model.")
        names.parse_full_name(parts[1])
        model = selectors.registry_model_get(user, parts[1])
        version = selectors.version_get(user, model.full_name, parts[2])
        location = Location(storage.version_prefix(version.pk), "/".join(parts[3:]))
    elif len(parts) >= 4 and parts[1] == "models" and parts[3] == "artifacts":
        logged = tracking.logged_model_get(user, parts[2])
        if str(logged.experiment_id) != parts[0]:
            raise NotFound(f"Logged model with ID '{parts[2]}' not found.")
        if write:
            tracking_require_write(user, logged, "logged_model")
        location = Location(tracking.logged_model_prefix(logged), "/".join(parts[4:]))
    elif len(parts) >= 3 and parts[2] == "artifacts":
        run = tracking.run_get(user, parts[1])
        if str(run.experiment_id) != parts[0]:
            raise NotFound(f"Run '{parts[1]}' not found")
        if write:
            tracking_require_write(user, run, "run")
        location = Location(tracking.run_artifact_prefix(run), "/".join(parts[3:]))
    else:
        raise _bad(path, "it is not inside a run's, a logged model's or a version's artifacts")
    if write and not location.rel:
        raise _bad(path, "name a file inside the artifact directory")
    _check_real_path(path, location.path)
    return location


def _check_real_path(path, storage_path):
    """On a filesystem store, symlinks must not lead outside the artifact root."""
    store = storage.artifact_storage()
    if not isinstance(store, FileSystemStorage):
        return
    root = os.path.realpath(store.location)
    real = os.path.realpath(os.path.join(root, storage_path))
    if real != root and not real.startswith(root + os.sep):
        raise _bad(path, "it leads outside the artifact store")


def is_file(location):
    store = storage.artifact_storage()
    if isinstance(store, FileSystemStorage):
        return os.path.isfile(store.path(location.path))
    return store.exists(location.path) and not list_dir(location)


def list_dir(location):
    """[{path, is_dir, file_size?}] directly inside `location` (basenames), [] when none."""
    store = storage.artifact_storage()
    try:
        dirs, files = store.listdir(location.path)
    except (FileNotFoundError, NotADirectoryError):
        return []
    out = [{"path": d, "is_dir": True} for d in dirs]
    out += [{"path": f, "is_dir": False, "file_size": store.size(f"{location.path}/{f}")} for f in files]
    return sorted(out, key=lambda f: f["path"])


class _Stream:
    """The request body, counted: more than `limit` bytes stops the upload."""

    def __init__(self, request, limit):
        self._request, self._limit, self.size = request, limit, 0

    def read(self, n=-1):
        data = self._request.read(n if n and n > 0 else storage.CHUNK)
        self.size += len(data)
        if self.size > self._limit:
            raise _too_large(self._limit)
        return data


def write(location, request):
    """Store the request body (streamed, never held whole in memory) at `location`."""
    store = storage.artifact_storage()
    path = storage.clean_path(location.path, what="artifact path")
    limit = settings.MLFLOW_ARTIFACT_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise InvalidInput("The Content-Length header is not a number.") from None
    if declared > limit:
        raise _too_large(limit)
    if store.exists(path):
        if not is_file(location):
            raise InvalidInput(f"{location.rel!r} is a directory.")
        store.delete(path)
    try:
        saved = store.save(path, File(_Stream(request, limit), name=os.path.basename(path)))
    except TooLarge:
        if store.exists(path):
            store.delete(path)
        raise
    if saved != path:
        store.delete(saved)
        raise InvalidInput(f"The artifact {location.rel!r} could not be stored under its name.")


def open_file(location):
    return storage.open_file(location.path)
