"""Where a new model version's files come from (`model-versions/create`, Register, Copy).

MLFLOW_API.md "Source of a version" and BAD_INPUTS.md "Version sources". Accepted:

    runs:/<run_id>/<path>                                   a run's artifacts (the run must be visible)
    models:/<model_id>                                      an MLflow 3 logged model (visible)
    models:/<catalog.schema.model>/<version> | @<alias>     a registered version (EXECUTE): a copy
    mlflow-artifacts:/<exp>/<run_id>/artifacts/<path>       our own proxy's URIs of the same two
    mlflow-artifacts:/<exp>/models/<model_id>/artifacts/<path>

Everything else is refused with 400 INVALID_PARAMETER_VALUE before anything is written: other
schemes (file:, http(s):, s3:, ftp:, dbfs:, plain or Windows paths), a host part, NUL or control
characters, `#`, `?`, `;`, backslashes, a `%` left after decoding, and a `..` that leaves the run's or logged model's
artifact directory. The string is URL-decoded until it stops changing (at most 10 rounds) before
any check, so `%2e%2e%2f` and `%252e…` are the same `../`. A `..` that stays inside the entity's
own artifacts (`…/artifacts/model/..`) resolves lexically and is accepted, as MLflow accepts it.

An `mlflow-artifacts:` path that passes every check above but lies in no run's or logged model's
artifacts (`mlflow-artifacts:/models///`, `…/<run>/model` beside `artifacts/`) is accepted as MLflow
accepts it (BAD_INPUTS.md: still 200), but there are no files we could register from it: the
version is created FAILED_REGISTRATION at once with the reason (the client's wait ends with that
message), no job starts and nothing is read.

A run or logged model the actor may not see, or a version without EXECUTE, is 404 as if absent;
`runs:/X/…` with `run_id=Y` (or a logged model with another `model_id`) is 400.
"""

import posixpath
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from django.db import transaction

from . import docs, jobs, names, selectors, services, storage, tracking
from .db import compiled_rows
from .errors import InvalidInput, NotFound
from .models import ModelVersion, RunInput
from .permissions import require

MAX_SOURCE_LENGTH = 4096
MAX_DECODE_ROUNDS = 10
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):(.*)$", re.DOTALL)
_FORBIDDEN = {"\x00": "a NUL character", "#": "a fragment ('#')", "?": "a query ('?')", ";": "a ';'",
              "\\": "a backslash"}
ACCEPTED = "runs:/<run_id>/<path>, models:/<model_id>, models:/<name>/<version> or mlflow-artifacts:/…"


@dataclass
class Source:
    """A validated source: files under `prefix` (storage-relative), or a registered version to copy."""

    text: str
    prefix: str = ""
    run: object = None
    logged_model: object = None
    version: ModelVersion = None
    lineage_inputs: list = field(default_factory=list)
    failure: str = ""  # accepted, but nothing to register: the version is created failed

    @property
    def run_id(self):
        if self.run is not None:
            return self.run.run_uuid
        if self.logged_model is not None:
            return self.logged_model.source_run_id
        return self.version.run_id if self.version is not None else ""


def _invalid(source, why):
    return InvalidInput(f"Invalid model version source {source[:300]!r}: {why}. Use {ACCEPTED}.")


def decode(source):
    """URL-decode until stable (≤ 10 rounds); refuse what no source may contain."""
    if not isinstance(source, str) or not source.strip():
        raise InvalidInput("Missing value for required parameter 'source'.")
    if len(source) > MAX_SOURCE_LENGTH:
        raise InvalidInput(f"The source must be at most {MAX_SOURCE_LENGTH} characters, got {len(source)}.")
    text = source
    for _ in range(MAX_DECODE_ROUNDS):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    else:
        if unquote(text) != text:
            raise _invalid(source, "it is encoded too many times")
    for raw in (source, text):
        for char, label in _FORBIDDEN.items():
            if char in raw:
                raise _invalid(source, f"it contains {label}")
        if any(ord(c) < 32 or ord(c) == 127 for c in raw):
            raise _invalid(source, "it contains a control character")
    if "%" in text:
        raise _invalid(source, "it contains a '%' that is not an escape")
    return text


def _segments(source, path):
    """Path segments with empty and `.` segments dropped (`..` kept for the caller)."""
    return [p for p in path.split("/") if p not in ("", ".")]


def _inside(source, base, rest):
    """Resolve `rest` (segments, `..` allowed) below `base`; refuse leaving it."""
    stack = []
    for part in rest:
        if part == "..":
            if not stack:
                raise _invalid(source, "its '..' leaves the artifact directory")
            stack.pop()
        else:
            stack.append(part)
    return "/".join([base, *stack]) if stack else base


def _no_dotdot(source, parts):
    if ".." in parts:
        raise _invalid(source, "it contains a '..' segment")


def parse(source):
    """(scheme, segments) of a decoded, checked source."""
    text = decode(source)
    match = _SCHEME_RE.match(text)
    if not match:
        raise _invalid(source, "it is a local path")
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme not in ("runs", "models", "mlflow-artifacts"):
        raise _invalid(source, f"the scheme '{scheme}' is not accepted")
    if rest.startswith("//") and not rest.startswith("///"):
        raise _invalid(source, "it names a host; use our own URIs without one")
    if not rest.startswith("/"):
        raise _invalid(source, f"use {scheme}:/… ")
    return scheme, _segments(source, rest)


_LINEAGE_FIELDS = ("name", "digest", "source_type", "source")


def _lineage(run):
    """The datasets `run` logged as inputs (SQL compiled once: every registration asks)."""
    rows = compiled_rows(("run-lineage",), lambda run_id: RunInput.objects.filter(run_id=run_id).order_by("pk").values(
        "tags", *(f"dataset__{f}" for f in _LINEAGE_FIELDS)), run_id=run.pk)
    return [
        {**{f: row[f"dataset__{f}"] for f in _LINEAGE_FIELDS},
         "context": next((t.get("value", "") for t in row["tags"] or [] if t.get("key") == "mlflow.data.context"), "")}
        for row in rows
    ]


def _from_run(actor, source, run_id_text, rest):
    run = tracking.run_get(actor, run_id_text)
    prefix = _inside(source, tracking.run_artifact_prefix(run), rest)
    return Source(source, prefix=prefix, run=run, lineage_inputs=_lineage(run))


def _from_logged_model(actor, source, model_id, rest):
    logged = tracking.logged_model_get(actor, model_id)
    prefix = _inside(source, tracking.logged_model_prefix(logged), rest)
    lineage = _lineage(logged.run) if logged.run_id else []
    return Source(source, prefix=prefix, logged_model=logged, lineage_inputs=lineage)


def resolve(*, actor, source, run_id="", model_id=""):
    """The validated `Source` of `source` for `actor`; raises InvalidInput (400) or NotFound (404)."""
    scheme, parts = parse(source)
    if scheme == "runs":
        if not parts:
            raise _invalid(source, "it names no run")
        _no_dotdot(source, parts[:1])
        resolved = _from_run(actor, source, parts[0], parts[1:])
    elif scheme == "models":
        _no_dotdot(source, parts)
        if len(parts) == 1 and "@" not in parts[0]:
            resolved = _from_logged_model(actor, source, parts[0], [])
        elif len(parts) == 1:
            name, _, alias = parts[0].rpartition("@")
            names.parse_full_name(name)
            resolved = Source(source, version=selectors.version_by_alias(actor, name, alias, details=False))
        elif len(parts) == 2:
            names.parse_full_name(parts[0])
            # The version's own row: a copy reads the source's tags itself (`jobs.job_create_copy`)
            # and needs neither its creator nor its aliases (12 → 9 ms a copy's create).
            resolved = Source(source, version=selectors.version_get(actor, parts[0], parts[1], details=False))
        else:
            raise _invalid(source, "models:/ takes a model id, or a name and a version")
    else:  # mlflow-artifacts:/<exp>/<run>/artifacts/… or /<exp>/models/<id>/artifacts/…
        if len(parts) >= 4 and parts[1] == "models" and parts[3] == "artifacts":
            _no_dotdot(source, parts[:4])
            resolved = _from_logged_model(actor, source, parts[2], parts[4:])
            if str(resolved.logged_model.experiment_id) != parts[0]:
                raise NotFound(f"Logged model with ID '{parts[2]}' not found.")
        elif len(parts) >= 3 and parts[2] == "artifacts":
            _no_dotdot(source, parts[:3])
            resolved = _from_run(actor, source, parts[1], parts[3:])
            if str(resolved.run.experiment_id) != parts[0]:
                raise NotFound(f"Run '{parts[1]}' not found")
        else:
            _inside(source, "x", parts)  # a traversal is reported as such
            resolved = Source(source, failure=(
                f"The source {source[:300]!r} is not inside a run's or a logged model's artifacts, so it has "
                f"no model files to register. Use {ACCEPTED}."
            ))
    if run_id and resolved.run_id != run_id:
        raise InvalidInput(
            f"The source {source[:300]!r} belongs to run {resolved.run_id or '(none)'}, not to the given "
            f"run_id {str(run_id)[:64]!r}."
        )
    if model_id and (resolved.logged_model is None or resolved.logged_model.model_id != model_id):
        raise InvalidInput(f"The source {source[:300]!r} is not the logged model {str(model_id)[:80]!r}.")
    if resolved.prefix:
        storage.clean_path(resolved.prefix, what="source")
    return resolved


# --- Creating a version from a source ---------------------------------------------------------
def version_register(*, actor, model, source, run_id="", model_id="", run_link="", description="", tags=None):
    """`model-versions/create`: check the actor may add versions, validate the source, then
    create a PENDING_REGISTRATION version and the job that copies and checks its files (a copy
    job for a `models:/name/version` source). Returns the version."""
    require(actor, "model.create_version", model)
    if run_id not in (None, "") and not isinstance(run_id, str):
        raise InvalidInput("Parameter 'run_id' must be a string.")
    if model_id not in (None, "") and not isinstance(model_id, str):
        raise InvalidInput("Parameter 'model_id' must be a string.")
    resolved = resolve(actor=actor, source=source, run_id=run_id or "", model_id=model_id or "")
    names.validate_description(description)
    tags = list(tags or [])
    for item in tags:
        if not isinstance(item, dict):
            raise InvalidInput("Each tag must be an object {key, value}.")
        names.validate_tag(item.get("key"), item.get("value"))
    with docs.changing(model.pk):
        if resolved.failure:
            return services.version_create(
                actor=actor, model=model, source=source, run_link=run_link or "", description=description or "",
                tags=tags, status=ModelVersion.FAILED, status_message=resolved.failure,
            )
        if resolved.version is not None:
            version, _job = jobs.job_create_copy(actor=actor, source_version=resolved.version, target_model=model)
            if description:
                services.version_update(actor=actor, version=version, description=description)
            for item in tags:
                services.version_tag_set(actor=actor, version=version, key=item.get("key"), value=item.get("value"))
            return version
        version, _job = jobs.job_create_register(
            actor=actor, model=model, source_prefix=resolved.prefix, source=source, run_id=resolved.run_id,
            run_link=run_link or "", description=description or "", tags=tags,
            lineage_inputs=resolved.lineage_inputs,
        )
        return version
