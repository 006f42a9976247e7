"""Pages and partials of background jobs and version files (issue 3). Thin: load through
selectors/permissions, call `registry.jobs`, render. Polling partials answer 286 (htmx: stop
polling) once there is nothing left to watch."""

import posixpath
import zipfile
from datetime import datetime
from datetime import timezone as dt_timezone

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from . import jobs, selectors, storage
from .errors import NotFound, RegistryError
from .models import VersionFile
from .views.common import domain_errors, load, page_url

HTMX_STOP_POLLING = 286


def _poll_response(request, template, context, done):
    response = render(request, template, context, status=HTMX_STOP_POLLING if done else 200)
    if done:
        response["HX-Trigger"] = "jobs-finished"  # pages may refresh parts of themselves on it
    return response


@login_required
@require_GET
def job_list(request):
    page = Paginator(jobs.user_jobs(request.user), 50).get_page(request.GET.get("page"))
    return render(request, "jobs/list.html", {"page": page, "jobs": page.object_list})


@login_required
@require_GET
@domain_errors
def job_progress(request, job_id):
    """One job's progress, for its creator only (anyone else: 404)."""
    job = jobs.job_get(request.user, job_id)
    return _poll_response(request, "jobs/_job.html", {"job": job}, job.finished)


@login_required
@require_GET
@domain_errors
def version_progress(request, catalog, schema, model, version):
    obj = load(request.user, "version", catalog, schema, model, version)
    job = jobs.version_job(obj)
    return _poll_response(request, "jobs/_version_job.html", {"job": job, "version": obj}, job is None or job.finished)


@login_required
@require_GET
@domain_errors
def model_progress(request, catalog, schema, model):
    """The model page's running jobs, and those that finished since the page was shown."""
    obj = load(request.user, "model", catalog, schema, model)
    try:
        since = datetime.fromtimestamp(float(request.GET.get("since", "")), tz=dt_timezone.utc)
    except (ValueError, OverflowError, OSError):
        since = None
    model_jobs = list(jobs.model_jobs(obj, since=since))
    watching = any(not j.finished for j in model_jobs)
    context = {"model": obj, "model_jobs": model_jobs, "since": request.GET.get("since", ""), "watching": watching}
    return _poll_response(request, "jobs/_model_jobs.html", context, not watching)


@login_required
@require_GET
@domain_errors
def file_download(request, catalog, schema, model, version, path):
    """One file of a version, always as an attachment (never rendered by the browser)."""
    obj = load(request.user, "version", catalog, schema, model, version)
    row = VersionFile.objects.filter(version=obj, path=path).first()
    if row is None:
        raise Http404("No such file in this version.")
    handle = storage.open_file(f"{storage.version_prefix(obj.pk)}/{row.path}")
    response = FileResponse(
        handle, as_attachment=True, filename=posixpath.basename(row.path), content_type="application/octet-stream"
    )
    return _attachment_headers(response, row.size)


class _Pipe:
    """A write-only file for zipfile that hands what was written to a streaming response."""

    def __init__(self):
        self.chunks, self.offset = [], 0

    def write(self, data):
        self.chunks.append(bytes(data))
        self.offset += len(data)
        return len(data)

    def tell(self):
        return self.offset

    def flush(self):
        pass

    def take(self):
        data, self.chunks = b"".join(self.chunks), []
        return data


def _zip_stream(prefix, rows):
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for row in rows:
            info = zipfile.ZipInfo(row.path, date_time=(2000, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with storage.open_file(f"{prefix}/{row.path}") as src, archive.open(info, "w", force_zip64=True) as dst:
                while chunk := src.read(storage.CHUNK):
                    dst.write(chunk)
                    yield pipe.take()
            yield pipe.take()
    yield pipe.take()


@login_required
@require_GET
@domain_errors
def version_zip(request, catalog, schema, model, version):
    """The whole version as one zip, streamed (no temporary copy on the server)."""
    obj = load(request.user, "version", catalog, schema, model, version)
    rows = list(VersionFile.objects.filter(version=obj).order_by("path"))
    if not rows:
        raise Http404("This version has no files.")
    name = f"{obj.model.full_name}-v{obj.version}.zip"
    response = StreamingHttpResponse(_zip_stream(storage.version_prefix(obj.pk), rows), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return _attachment_headers(response)


def _attachment_headers(response, size=None):
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    if size is not None:
        response["Content-Length"] = str(size)
    return response


@login_required
@require_http_methods(["GET", "POST"])
@domain_errors
def version_copy(request, catalog, schema, model, version):
    """Copy this version into a model the user owns, then watch it on the target model's page."""
    obj = load(request.user, "version", catalog, schema, model, version)
    targets = jobs.copy_targets(request.user)
    error, status = None, 200
    if request.method == "POST":
        try:
            target = selectors.model_get(request.user, request.POST.get("target", ""))
            jobs.job_create_copy(actor=request.user, source_version=obj, target_model=target)
            return redirect(page_url(target))
        except NotFound:
            error, status = "Choose one of the models you own as the target.", 400
        except RegistryError as exc:  # Forbidden, InvalidInput, BackgroundUnavailable…
            error, status = exc.message, exc.status
    context = {"version": obj, "model": obj.model, "targets": targets, "error": error,
               "selected": request.POST.get("target", "")}
    return render(request, "jobs/copy.html", context, status=status)
