"""Background jobs: register, copy and delete-files (issue 3). The `Job` row is the truth.

Life of a job:
- `job_create_*` makes the change that needs the job (a PENDING version, a deleted row) and the
  Job row in one transaction, after checking that the broker answers (when it does not, the
  action fails with `BackgroundUnavailable` and nothing changes). The message carrying the job id
  is published on commit, so a rolled-back transaction never runs its job.
- A worker runs `job_run(job_id)`: `job_claim` moves QUEUED → RUNNING with a conditional update
  and a fresh lease, so a message delivered twice runs the job once. Every later write of that
  run (progress, heartbeat, finish) is conditional on the lease.
- Progress (files and bytes) is written at most every `JOBS["PROGRESS_INTERVAL"]` seconds, the
  first time one interval after the claim (a job done sooner writes only its finish); each write
  is also the heartbeat.
- `sweep_stale` (Celery beat) finds RUNNING jobs whose heartbeat went stale (the worker was
  killed) and queues them again, or fails them with a reason after `JOBS["MAX_ATTEMPTS"]` runs.

Register and copy write into `registry/versions/<id>/` reading each source file once (sha256 and
BLAKE3 computed over the bytes written, the written size checked against them; a copy also against
the source's recorded size and BLAKE3, or sha256 for files recorded before BLAKE3 was), and only
then mark the version READY in the same transaction that records its files. Any failure leaves
the version FAILED_REGISTRATION with the reason and removes what was written.
"""

import logging
import threading
import time
import uuid
from datetime import timedelta

import yaml
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import docs, services, storage
from .db import compiled_objects, create, create_many, reused_plans, update
from .errors import InvalidInput, NotFound, RegistryError
from .models import Job, ModelVersion, RegisteredModel, VersionFile, VersionInput
from .permissions import OWNER, compiled_for, filter_holding, require

log = logging.getLogger(__name__)

MAX_MLMODEL_BYTES = 1024 * 1024
NO_SIGNATURE = (
    "The model has no signature, and a version without one cannot be registered. Log the model "
    "again with one: pass input_example= (MLflow infers the signature from it), e.g. "
    "mlflow.sklearn.log_model(model, name='model', input_example=X_train[:5]), or pass "
    "signature=mlflow.models.infer_signature(X_train, model.predict(X_train))."
)


class BackgroundUnavailable(RegistryError):
    """The broker does not answer: actions that need a job are refused and change nothing."""

    error_code = "TEMPORARILY_UNAVAILABLE"
    uc_error_code = "TEMPORARILY_UNAVAILABLE"
    status = 503


class JobFailed(Exception):
    """A job cannot succeed; the message is shown to the user as the reason."""


class LostClaim(Exception):
    """This run no longer holds the job (its lease was taken over): stop without writing."""


def _conf(name):
    return settings.JOBS[name]


# --- Broker ---------------------------------------------------------------------------------
def broker_check():
    """Raise BackgroundUnavailable unless the broker accepts connections, within a short timeout."""
    from catalog_explorer.celery import app

    timeout = _conf("BROKER_CHECK_TIMEOUT")
    url = app.conf.broker_url
    try:
        if url.startswith(("redis://", "rediss://")):
            # A PING on a pooled connection (0.2 ms), asked every time, never a remembered
            # answer: a new kombu connection per check cost ~7 ms (connect, handshake, close).
            _redis_client(url, timeout).ping()
        else:
            with app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=0, timeout=timeout)
                conn.default_channel  # noqa: B018 — Redis connects lazily; this makes it connect
    except Exception as exc:
        log.warning("Broker check failed: %s", exc)
        raise BackgroundUnavailable(
            "Background work is unavailable right now (the job queue does not answer), so nothing "
            "was changed. Try again in a moment; if it persists, ask an administrator to check "
            "Redis and the Celery workers."
        ) from None


_redis_clients = {}


def _redis_client(url, timeout):
    """One redis-py client (its own connection pool, thread-safe) per broker URL and timeout."""
    client = _redis_clients.get((url, timeout))
    if client is None:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        _redis_clients[(url, timeout)] = client
    return client


def _publish(job_id, countdown=None):
    from .tasks import run_job

    try:
        run_job.apply_async(args=[job_id], retry=False, countdown=countdown)
    except Exception as exc:
        # The change is committed; the sweep publishes a queued job again later.
        log.error("Could not queue job %s: %s", job_id, exc)
        Job.objects.filter(pk=job_id, state=Job.QUEUED).update(
            message="Waiting for the job queue to answer; it will be queued again automatically."
        )


def _queue_on_commit(job):
    transaction.on_commit(lambda: _publish(job.pk))


def _new_job(**fields):
    now = timezone.now()
    return create(Job, state=Job.QUEUED, queued_at=now, heartbeat_at=now, **fields)


# --- Creating jobs (each in the transaction of the change that needs it) --------------------
def job_create_register(
    *, actor, model, source_prefix, source="", run_id="", run_link="", description="", tags=None,
    lineage_inputs=None,
):
    """A new PENDING version of `model` whose files are copied from `source_prefix` (a
    storage-relative directory under `mlartifacts/`, resolved and validated by the caller) by a
    job. `lineage_inputs`: [{name, digest, source_type, source, context}] the source run logged.
    Returns (version, job)."""
    require(actor, "model.create_version", model)
    source_prefix = storage.clean_path(source_prefix, what="source")
    if not source_prefix.startswith(storage.REGISTER_SOURCE_ROOTS):
        raise InvalidInput(f"The source {source_prefix[:200]!r} is outside the allowed artifact locations.")
    inputs = [_clean_input(i) for i in lineage_inputs or []]
    broker_check()
    with docs.changing(model.pk, savepoint=False):  # no savepoint in a caller's transaction (see services.version_create)
        version = services.version_create(
            actor=actor, model=model, source=source or source_prefix, run_id=run_id, run_link=run_link,
            description=description, tags=tags,
        )
        job = _new_job(
            kind=Job.REGISTER, created_by=actor, model=model, version=version, target_name=version.full_name,
            source_prefix=source_prefix, payload={"lineage_inputs": inputs},
        )
        _queue_on_commit(job)
    return version, job


def job_create_copy(*, actor, source_version, target_model):
    """Copy `source_version` (needs EXECUTE on it) into `target_model` (needs ownership) as a new
    version there with the source's description, signature and tags (as MLflow's
    copy_model_version does); the files are copied and checked by a job. Returns (version, job)."""
    require(actor, "model.read", source_version.model)
    require(actor, "model.copy_into", target_model)
    if source_version.status != ModelVersion.READY:
        raise InvalidInput(
            f"Only a READY version can be copied; {source_version.full_name} is {source_version.status}."
        )
    broker_check()
    with docs.changing(target_model.pk, savepoint=False):  # no savepoint in a caller's transaction (see services.version_create)
        version = services.version_create(
            actor=actor, model=target_model, source=f"models:/{source_version.full_name}",
            run_id=source_version.run_id, run_link=source_version.run_link,
            description=source_version.description, signature=source_version.signature,
            tags=list(source_version.tags.values_list("key", "value")), copied_from=source_version,
        )
        job = _new_job(
            kind=Job.COPY, created_by=actor, model=target_model, version=version, target_name=version.full_name,
            source_version=source_version, source_prefix=storage.version_prefix(source_version.pk),
        )
        _queue_on_commit(job)
    return version, job


def files_delete_later(*, actor, target_name, version_ids, model=None):
    """Called by `services.model_delete` / `services.version_delete` inside their transaction,
    before the rows go: a job that removes the versions' files. Raises BackgroundUnavailable
    (rolling the whole delete back) when the broker does not answer."""
    if not version_ids:
        return None
    broker_check()
    return job_create_delete_files(
        actor=actor, target_name=target_name, prefixes=[storage.version_prefix(pk) for pk in version_ids],
        model=model,
    )


def job_create_delete_files(*, actor, target_name, prefixes, model=None):
    """A job removing the files under `prefixes`, queued when the surrounding transaction commits."""
    job = _new_job(
        kind=Job.DELETE, created_by=actor if actor and actor.pk else None,
        model=model if model is not None and model.pk else None,
        target_name=target_name, payload={"prefixes": [storage.clean_path(p) for p in prefixes]},
    )
    _queue_on_commit(job)
    return job


def _clean_input(item):
    if not isinstance(item, dict):
        raise InvalidInput("Each lineage input must be an object {name, digest, source_type, source, context}.")
    fields = {"name": 500, "digest": 64, "source_type": 64, "source": 10_000, "context": 64}
    return {k: str(item.get(k) or "")[:limit] for k, limit in fields.items()}


# --- Running jobs ---------------------------------------------------------------------------
def job_claim(job_id):
    """QUEUED → RUNNING with a fresh lease, for exactly one caller. Returns the Job or None
    (already claimed by another delivery, finished, or gone)."""
    lease = uuid.uuid4().hex
    now = timezone.now()
    # Its SQL compiled once (`db.update`): Django's update() assembled it for every job (~0.5 ms).
    claimed = update(Job, int(job_id), where={"state": Job.QUEUED}, increment=("attempts",),
                     state=Job.RUNNING, lease=lease, started_at=now, heartbeat_at=now, message="")
    if not claimed:
        return None
    # What the run reads, in this one query: the version it makes (and its model, for the
    # audit's name) and a copy's source. Not the creator: no run reads it. Compiled once: Django
    # took ~0.5 ms to assemble this two-chain select_related for every job.
    found = compiled_objects(("job-claimed",), _claimed, job=int(job_id))
    return found[0] if found else None


def _claimed(job):
    return Job.objects.select_related("version__model", "source_version__model").filter(pk=job)[:1]


class Progress:
    """Counts files and bytes, writes them (and the heartbeat) at most every PROGRESS_INTERVAL s.
    The first write comes one interval after the start (the claim wrote the heartbeat): a job
    that ends sooner (a small model: ~5 ms) writes no progress at all, its finish writes the
    final counters; a longer one shows its totals and counts from then on."""

    def __init__(self, job):
        self.job, self.interval, self._last = job, _conf("PROGRESS_INTERVAL"), time.monotonic()
        # A storage backend may read the source in a thread of its own (boto3's transfers): only
        # the job's thread writes to the database (a thread of its own would open a second
        # connection, outside the run's transaction discipline); others only count.
        self._thread = threading.get_ident()

    def totals(self, files, size):
        self.job.files_total, self.job.bytes_total = files, size
        self.job.files_done = self.job.bytes_done = 0
        self.maybe_flush()

    def add_bytes(self, n):
        self.job.bytes_done += n
        self.maybe_flush()

    def file_done(self):
        self.job.files_done += 1
        self.maybe_flush()

    def maybe_flush(self):
        if threading.get_ident() == self._thread and time.monotonic() - self._last >= self.interval:
            self.flush()

    def flush(self, **extra):
        job_progress(self.job, **extra)
        self._last = time.monotonic()


def job_progress(job, **extra):
    """Write the job's progress counters and heartbeat; raise LostClaim if this run lost it."""
    fields = dict(
        files_done=job.files_done, files_total=job.files_total, bytes_done=job.bytes_done,
        bytes_total=job.bytes_total, heartbeat_at=timezone.now(), **extra,
    )
    if not update(Job, job.pk, where={"lease": job.lease, "state": Job.RUNNING}, **fields):
        raise LostClaim(job.pk)
    if job.version_id and not ModelVersion.objects.filter(pk=job.version_id).exists():
        raise JobFailed("The version was deleted while its files were copied.")


def job_finish(job, message=""):
    """RUNNING → SUCCEEDED for the run holding the lease. Call inside the transaction that makes
    the job's result visible."""
    if not update(
        Job, job.pk, where={"lease": job.lease, "state": Job.RUNNING},
        state=Job.SUCCEEDED, message=message, finished_at=timezone.now(), heartbeat_at=timezone.now(),
        # The totals too: a job shorter than PROGRESS_INTERVAL never wrote them.
        files_done=job.files_total, files_total=job.files_total, bytes_done=job.bytes_total,
        bytes_total=job.bytes_total,
    ):
        raise LostClaim(job.pk)
    job.state = Job.SUCCEEDED


def job_fail(job, message, *, lease=True):
    """→ FAILED with `message`; when the job made a version, that version becomes
    FAILED_REGISTRATION with the same reason. Returns False if this run had lost the job."""
    with transaction.atomic():
        qs = Job.objects.filter(pk=job.pk, state__in=Job.UNFINISHED)
        if lease:
            qs = qs.filter(lease=job.lease)
        if not qs.update(state=Job.FAILED, message=message[:5000], finished_at=timezone.now()):
            return False
        job.state, job.message = Job.FAILED, message
        if job.kind in (Job.REGISTER, Job.COPY) and job.version_id:
            version = ModelVersion.objects.select_related("model").filter(pk=job.version_id).first()
            if version is not None and version.status == ModelVersion.PENDING:
                services.version_set_status(version=version, status=ModelVersion.FAILED, message=message)
    return True


def job_run(job_id):
    """What a worker does with a job id (the Celery task calls only this). Its queries are the
    same few on every run: on PostgreSQL they are prepared (`reused_plans`), which spares the
    planning of the claim's join and of each write (7.6 → 6.5 ms for a small registration)."""
    with reused_plans():
        _run(job_id)


def _run(job_id):
    job = job_claim(job_id)
    if job is None:
        log.info("Job %s: nothing to do (already claimed, finished or gone)", job_id)
        return
    runner = {Job.REGISTER: _run_register, Job.COPY: _run_copy, Job.DELETE: _run_delete}[job.kind]
    try:
        runner(job)
    except LostClaim:
        log.warning("Job %s: the claim was taken over; this run stops", job_id)
    except JobFailed as exc:
        _cleanup_version_files(job)
        job_fail(job, str(exc))
    except Exception as exc:  # the reason goes to the user, the traceback to the log
        log.exception("Job %s failed", job_id)
        _cleanup_version_files(job)
        job_fail(job, f"The job failed: {type(exc).__name__}: {exc}")


def _cleanup_version_files(job):
    if job.kind in (Job.REGISTER, Job.COPY) and job.version_id:
        failures = storage.delete_prefix(storage.version_prefix(job.version_id))
        if failures:
            log.error("Job %s: could not remove partial files: %s", job.pk, failures)


def _run_register(job):
    version = _pending_version(job)
    source = job.source_prefix
    files = storage.list_files(source)
    if not files:
        raise JobFailed(f"There are no files at the source {source!r}.")
    names = {rel for rel, _ in files}
    if "MLmodel" not in names:
        raise JobFailed(f"The source {source!r} has no MLmodel file at its top: it is not an MLflow model.")
    mlmodel = read_mlmodel(f"{source}/MLmodel")
    signature = signature_of(mlmodel)
    if not signature:
        raise JobFailed(NO_SIGNATURE)
    plan = [(f"{source}/{rel}", rel, size, None) for rel, size in files]
    written = _copy_files(job, version, plan)
    _make_ready(
        job, version, written, [VersionInput(version=version, **i) for i in job.payload.get("lineage_inputs", [])],
        f"Registered {len(written)} files.", signature=version.signature or signature,
    )


def _run_copy(job):
    version = _pending_version(job)
    src = job.source_version
    if src is None or src.status != ModelVersion.READY:
        raise JobFailed("The source version was deleted, or is not READY any more.")
    recorded = list(VersionFile.objects.filter(version=src).values_list("path", "size", "sha256", "blake3"))
    if not recorded:
        raise JobFailed(f"The source version {src.full_name} has no files to copy.")
    prefix = storage.version_prefix(src.pk)
    plan = [(f"{prefix}/{path}", path, size, storage.Sums(size, sha, b3)) for path, size, sha, b3 in recorded]
    written = _copy_files(job, version, plan)
    inputs = [
        VersionInput(version=version, name=i.name, digest=i.digest, source_type=i.source_type, source=i.source,
                     context=i.context) for i in src.lineage_inputs.all()
    ]
    _make_ready(job, version, written, inputs, f"Copied {len(written)} files from {src.full_name}.")


def _pending_version(job):
    # job_claim loaded the version (with its model) right after claiming: no second read.
    version = job.version
    if version is None:
        raise JobFailed("The version was deleted before its files were copied.")
    if version.status != ModelVersion.PENDING:
        raise JobFailed(f"The version is {version.status}, not PENDING_REGISTRATION.")
    return version


def _make_ready(job, version, written, inputs, message, **fields):
    """The one transaction that makes the version READY with its files and lineage (and `fields`,
    e.g. its signature), and the job SUCCEEDED: five statements. The version's update is
    conditional on PENDING, so it is also the check (the version was not deleted or changed
    while its files were copied) and the row lock that SELECT ... FOR UPDATE used to take.
    Files and inputs are only ever written here, and this transaction commits once per version
    (it leaves the version READY), so there is nothing earlier to delete first. The audit event
    is `services.version_make_ready`'s; the model's doc is rewritten last (`docs.changing`)."""
    with docs.changing(version.model_id):
        before = version.status
        if not services.version_make_ready(version=version, **fields):
            status = ModelVersion.objects.filter(pk=version.pk).values_list("status", flat=True).first()
            if status is None:
                raise JobFailed("The version was deleted while its files were copied.")
            raise JobFailed(f"The version became {status} while its files were copied.")
        try:
            job_finish(job, message)
            create_many(VersionFile, [dict(version=version, path=p, size=s.size, sha256=s.sha256, blake3=s.blake3)
                                      for p, s in written])
            if inputs:
                VersionInput.objects.bulk_create(inputs)
        except BaseException:
            version.status = before  # rolled back with the transaction
            raise


def _copy_files(job, version, plan):
    """Copy [(source path, relative path, size, recorded `storage.Sums` or None)] into the
    version's directory, checking each written file against what was read from the source:
    [(relative path, Sums)]."""
    dest = storage.version_prefix(version.pk)
    storage.delete_prefix(dest)  # leftovers of an earlier, interrupted run
    progress = Progress(job)
    progress.totals(len(plan), sum(size for _, _, size, _ in plan))
    rate = _conf("COPY_MAX_BYTES_PER_SECOND")
    written = []
    for src, rel, _size, recorded in plan:
        # One pass: the sums are of the bytes written (`storage.copy_file`), and the stored size
        # is checked against them. A copy is also checked against the source's recorded sums
        # (`Sums.checked`): where its BLAKE3 was recorded, sha256 is not computed again and the
        # copy runs at disk speed, not sha256's.
        known = recorded is not None and bool(recorded.blake3)
        sums = storage.copy_file(src, f"{dest}/{rel}", on_bytes=progress.add_bytes, max_rate=rate, sha256=not known)
        if recorded is not None:
            sums = sums.checked(recorded)
            if sums is None:
                raise JobFailed(f"The source file {rel} does not match its recorded checksum; nothing was copied.")
        written.append((rel, sums))
        progress.file_done()
    # No last progress write: job_finish writes the final counters, and _make_ready finds a
    # version deleted meanwhile, in the finishing transaction.
    return written


def _run_delete(job):
    prefixes = job.payload.get("prefixes", [])
    progress = Progress(job)
    progress.totals(len(prefixes), 0)
    failures = []
    for prefix in prefixes:
        failures += [f"{prefix}/{path}: {error}" for path, error in storage.delete_prefix(prefix)]
        progress.file_done()
    if failures:
        shown = "; ".join(failures[:5]) + (f" (and {len(failures) - 5} more)" if len(failures) > 5 else "")
        if job.attempts < _conf("MAX_ATTEMPTS"):
            job_retry(job, f"Could not remove {len(failures)} files, retrying: {shown}", countdown=5 * job.attempts)
            return
        raise JobFailed(f"Could not remove {len(failures)} files after {job.attempts} attempts: {shown}")
    with transaction.atomic():
        job_finish(job, f"Removed the files of {job.target_name}.")


def job_retry(job, message, *, countdown=None):
    """Give the job back to the queue for another attempt (the lease holder only)."""
    if not Job.objects.filter(pk=job.pk, lease=job.lease, state=Job.RUNNING).update(
        state=Job.QUEUED, message=message[:5000], queued_at=timezone.now(), heartbeat_at=timezone.now(), lease="",
    ):
        raise LostClaim(job.pk)
    _publish(job.pk, countdown=countdown)


# --- The sweep ------------------------------------------------------------------------------
def sweep_stale(*, stale_after=None, requeue_after=None):
    """Jobs lost by a killed worker (RUNNING, heartbeat older than `stale_after` seconds) are
    queued again, or failed with a reason after MAX_ATTEMPTS runs; QUEUED jobs whose message
    was never delivered (older than `requeue_after`) are published again. Returns
    {"requeued": [ids], "failed": [ids]}."""
    stale_after = _conf("STALE_AFTER") if stale_after is None else stale_after
    requeue_after = _conf("REQUEUE_QUEUED_AFTER") if requeue_after is None else requeue_after
    now = timezone.now()
    result = {"requeued": [], "failed": []}
    stale = Job.objects.filter(state=Job.RUNNING, heartbeat_at__lt=now - timedelta(seconds=stale_after))
    for job in stale.select_related("version"):
        if job.attempts >= _conf("MAX_ATTEMPTS"):
            reason = (
                f"The worker running this job stopped responding (no heartbeat for {stale_after} s) "
                f"{job.attempts} times; giving up."
            )
            if job_fail(job, reason, lease=False):
                _cleanup_version_files(job)
                result["failed"].append(job.pk)
            continue
        requeued = Job.objects.filter(pk=job.pk, state=Job.RUNNING, lease=job.lease).update(
            state=Job.QUEUED, lease="", queued_at=now, heartbeat_at=now,
            message=f"The worker running this job stopped responding; queued again (attempt {job.attempts + 1}).",
        )
        if requeued:
            _publish(job.pk)
            result["requeued"].append(job.pk)
    lost = Job.objects.filter(state=Job.QUEUED, heartbeat_at__lt=now - timedelta(seconds=requeue_after))
    for job_id in lost.values_list("pk", flat=True):
        if Job.objects.filter(pk=job_id, state=Job.QUEUED).update(heartbeat_at=now):
            _publish(job_id)
            result["requeued"].append(job_id)
    return result


# --- Reading: MLmodel and progress ----------------------------------------------------------
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10× faster than pure Python


def _refuse_aliases(text):
    """MLflow never writes aliases, and nested ones ("billion laughs") would turn a small file
    into an exponential amount of output: refused while parsing, before anything is built."""
    for event in yaml.parse(text, Loader=_SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed", event.start_mark)


def read_mlmodel(path):
    """The MLmodel file parsed with a safe YAML loader (a dict), size-limited, no aliases."""
    with storage.open_file(path) as f:
        raw = f.read(MAX_MLMODEL_BYTES + 1)
    if len(raw) > MAX_MLMODEL_BYTES:
        raise JobFailed("The MLmodel file is larger than 1 MiB.")
    try:
        text = raw.decode("utf-8")
        if "*" in text:  # an alias is `*name`: without the character there is none (a parse spared)
            _refuse_aliases(text)
        data = yaml.load(text, Loader=_SafeLoader)  # noqa: S506 - a SafeLoader
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise JobFailed(f"The MLmodel file is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise JobFailed("The MLmodel file does not hold a mapping.")
    return data


def signature_of(mlmodel):
    """{"inputs": [...], "outputs": [...]} from MLmodel's `signature` (whose parts MLflow writes
    as JSON strings), or None when there is none or it has no inputs."""
    import json

    sig = mlmodel.get("signature")
    if not isinstance(sig, dict):
        return None
    result = {}
    for part in ("inputs", "outputs", "params"):
        value = sig.get(part)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                value = None
        if isinstance(value, list):
            result[part] = value
    return result if result.get("inputs") else None


def version_job(version):
    """The latest job that made `version` (register or copy), or None."""
    return Job.objects.filter(version=version).order_by("-created_at", "-id").first()


def model_jobs(model, *, since=None):
    """Jobs of `model`'s versions, oldest first: unfinished ones, and those finished after
    `since`. Without `since` (every model page shows them) its SQL is compiled once: Django took
    ~0.8 ms to assemble it for every page."""
    if since is None:
        return compiled_objects(("model-jobs",), _model_jobs, model=model.pk)
    return _model_jobs(model.pk, Q(finished_at__gte=since))


def _model_jobs(model, finished_since=None):
    cond = Q(state__in=Job.UNFINISHED)
    if finished_since is not None:
        cond |= finished_since
    return Job.objects.filter(cond, model_id=model, kind__in=[Job.REGISTER, Job.COPY]).select_related(
        "version").order_by("created_at", "id")


def copy_targets(user):
    """Models `user` owns (and sees): where a version may be copied to."""
    return filter_holding(user, RegisteredModel.objects.all(), OWNER).order_by("full_name")


def copy_target_names(user):
    """The full names of `copy_targets(user)`, in order: a version page's choice of target. Its
    SQL compiled once and read as names, not models: a superuser's list holds every model (with
    1,000, Django's assembly and the instances took ~4 ms of the version page)."""
    return [name for name, in compiled_for(user, ("copy-target-names",), _copy_target_names, tuples=True)]


def _copy_target_names(user):
    return copy_targets(user).values("full_name")


def user_jobs(user):
    """The jobs `user` started, newest first."""
    if user is None or not user.is_authenticated:
        return Job.objects.none()
    return Job.objects.filter(created_by=user).select_related("version__model", "model").order_by("-created_at", "-id")


def job_get(user, job_id):
    """A job its creator (or a superuser) may watch; NotFound for anyone else."""
    qs = Job.objects.select_related("version__model", "model")
    if not (user and user.is_active and user.is_superuser):
        qs = qs.filter(created_by=user.pk if user and user.is_authenticated else None)
    job = qs.filter(pk=job_id).first()
    if job is None or job.created_by_id is None and not user.is_superuser:
        raise NotFound(f"Job {job_id} not found")
    return job

