"""What the jobs slots (templates/jobs/_*.html) need from a page: the job of a version, the file
tree, the parsed MLmodel, the copy targets. Reads only; permission-filtered. (Lineage is
registry/lineage.py, drawn by templates/registry/partials/lineage.html.)"""

import json
import time

from django import template
from django.utils.html import format_html_join

from registry import jobs, storage
from registry.models import Job, ModelVersion, VersionFile

register = template.Library()

MAX_EXAMPLE_BYTES = 64 * 1024


@register.simple_tag
def version_job(version):
    return jobs.version_job(version)


@register.simple_tag
def model_jobs(model):
    """Unfinished register/copy jobs of `model`, and the time they are watched from."""
    found = list(jobs.model_jobs(model))
    return {"jobs": found, "since": f"{time.time():.3f}", "watching": any(not j.finished for j in found)}


@register.simple_tag
def running_jobs(user):
    if not user.is_authenticated:
        return 0
    return Job.objects.filter(created_by=user, state__in=Job.UNFINISHED).count()


@register.simple_tag
def copy_targets(user, version):
    """The full names of the models `user` owns, when `version` may be copied at all (READY),
    else []."""
    if version.status != ModelVersion.READY:
        return []
    return jobs.copy_target_names(user)


@register.filter
def options(names):
    """`<option>`s of `names` (value and text the name, escaped): a superuser's choice of copy
    target lists every model, ~3 µs an option through the template's loop."""
    return format_html_join("", '<option value="{}">{}</option>', ((name, name) for name in names))


def _tree(rows):
    """Sorted files → [{"depth", "name", "dir": bool, "file": VersionFile | None}]."""
    out, opened = [], set()
    for row in rows:
        parts = row.path.split("/")
        for depth in range(len(parts) - 1):
            key = "/".join(parts[: depth + 1])
            if key not in opened:
                opened.add(key)
                out.append({"depth": depth, "name": parts[depth] + "/", "dir": True, "file": None})
        out.append({"depth": len(parts) - 1, "name": parts[-1], "dir": False, "file": row})
    return out


def _column(col):
    if not isinstance(col, dict):
        return {"name": "", "type": str(col)}
    kind = col.get("type", "")
    if kind == "tensor" and isinstance(col.get("tensor-spec"), dict):
        spec = col["tensor-spec"]
        kind = f"tensor {spec.get('dtype', '?')} {spec.get('shape', '')}"
    return {"name": col.get("name", ""), "type": kind, "required": col.get("required", True)}


def _mlmodel(version, by_path):
    if "MLmodel" not in by_path:
        return None
    prefix = storage.version_prefix(version.pk)
    try:
        data = jobs.read_mlmodel(f"{prefix}/MLmodel")
    except (jobs.JobFailed, OSError) as exc:
        return {"error": str(exc)}
    flavors = []
    for name, conf in (data.get("flavors") or {}).items():
        conf = conf if isinstance(conf, dict) else {}
        details = [f"{k}: {v}" for k, v in conf.items() if k.endswith("_version") or k == "loader_module"]
        flavors.append({"name": str(name), "details": ", ".join(details)})
    sig = jobs.signature_of(data) or {}
    example = None
    info = data.get("saved_input_example_info")
    path = info.get("artifact_path") if isinstance(info, dict) else None
    if isinstance(path, str) and path in by_path and by_path[path].size <= MAX_EXAMPLE_BYTES:
        with storage.open_file(f"{prefix}/{path}") as f:
            raw = f.read(MAX_EXAMPLE_BYTES).decode("utf-8", "replace")
        try:
            example = json.dumps(json.loads(raw), indent=2)[:MAX_EXAMPLE_BYTES]
        except ValueError:
            example = raw
    return {
        "flavors": flavors,
        "inputs": [_column(c) for c in sig.get("inputs", [])],
        "outputs": [_column(c) for c in sig.get("outputs", [])],
        "example": example,
        "mlflow_version": data.get("mlflow_version", ""),
    }


@register.simple_tag
def version_files(version):
    rows = list(VersionFile.objects.filter(version=version).order_by("path"))
    by_path = {r.path: r for r in rows}
    return {
        "tree": _tree(rows),
        "count": len(rows),
        "total": sum(r.size for r in rows),
        "mlmodel": _mlmodel(version, by_path) if rows else None,
    }


@register.filter
def url_parts(obj):
    """URL arguments of a model ([catalog, schema, model]) or a version (… + number)."""
    if isinstance(obj, ModelVersion):
        return [*obj.model.full_name.split("."), obj.version]
    return obj.full_name.split(".")
