"""Background jobs and version files (issue 3). Imported by registry/models.py.

A `Job` row is the truth about a background task: the broker only carries its id. Rules live in
`registry/jobs.py`; these classes only hold data.
"""

from django.conf import settings
from django.db import models

__all__ = ["Job", "VersionFile", "VersionInput"]


class Job(models.Model):
    REGISTER, COPY, DELETE = "register", "copy", "delete"
    KINDS = [(REGISTER, "Register"), (COPY, "Copy"), (DELETE, "Delete files")]
    QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
    STATES = [(QUEUED, "Queued"), (RUNNING, "Running"), (SUCCEEDED, "Succeeded"), (FAILED, "Failed")]
    UNFINISHED = (QUEUED, RUNNING)

    kind = models.CharField(max_length=16, choices=KINDS)
    state = models.CharField(max_length=16, choices=STATES, default=QUEUED)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    # What the job makes or changes. Kept as text too, so a job outlives a deleted target.
    model = models.ForeignKey(
        "registry.RegisteredModel", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    version = models.ForeignKey(
        "registry.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    target_name = models.CharField(max_length=1024, blank=True, default="")
    # Copy: the version whose files are copied. Register: a storage-relative directory.
    source_version = models.ForeignKey(
        "registry.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source_prefix = models.TextField(blank=True, default="")
    # Kind-specific input: lineage inputs for register, storage prefixes for delete.
    payload = models.JSONField(default=dict, blank=True)

    files_done = models.PositiveIntegerField(default=0)
    files_total = models.PositiveIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    bytes_total = models.BigIntegerField(default=0)
    message = models.TextField(blank=True, default="")

    attempts = models.PositiveSmallIntegerField(default=0)
    # Set by each claim; every later write of the run is conditional on it (a fencing token), so
    # a worker that lost its claim (stale heartbeat, re-queued) cannot overwrite the new run.
    lease = models.CharField(max_length=32, blank=True, default="")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["created_by", "-created_at"], name="job_user_idx"),
            models.Index(fields=["state", "heartbeat_at"], name="job_state_idx"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.target_name} ({self.state})"

    @property
    def finished(self):
        return self.state not in self.UNFINISHED

    @property
    def percent(self):
        if self.state == self.SUCCEEDED:
            return 100
        if self.bytes_total:
            return min(100, int(self.bytes_done * 100 / self.bytes_total))
        if self.files_total:
            return min(100, int(self.files_done * 100 / self.files_total))
        return 0


class VersionFile(models.Model):
    """One file of a version in managed storage, checked when it was written."""

    version = models.ForeignKey("registry.ModelVersion", on_delete=models.CASCADE, related_name="files")
    path = models.CharField(max_length=1024)  # relative to the version's storage directory
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    # BLAKE3 of the same bytes: a copy checks its source against it (~5x faster than sha256).
    # Blank for files recorded before it was; a copy of those checks sha256 and records both.
    blake3 = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["path"]
        constraints = [models.UniqueConstraint(fields=["version", "path"], name="version_file_unique")]

    def __str__(self):
        return self.path


class VersionInput(models.Model):
    """A dataset the version's source run logged as an input (`mlflow.log_input`): lineage."""

    version = models.ForeignKey("registry.ModelVersion", on_delete=models.CASCADE, related_name="lineage_inputs")
    name = models.CharField(max_length=500, blank=True, default="")
    digest = models.CharField(max_length=64, blank=True, default="")
    source_type = models.CharField(max_length=64, blank=True, default="")
    source = models.TextField(blank=True, default="")
    context = models.CharField(max_length=64, blank=True, default="")  # "training", "eval"…

    class Meta:
        ordering = ["id"]
