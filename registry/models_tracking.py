"""MLflow tracking: experiments, runs, params, metrics, datasets, logged models (issue 4).
Imported by registry/models.py.

These live outside catalogs. Who sees what is decided in `permissions.py` (tracking section);
the rules in `tracking.py` (services) and the MLflow API only read and write these rows.
Times are stored as MLflow sends them: epoch milliseconds.
"""

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from .models import EXPERIMENT_PRIVILEGES, OwnedBy, _perms

__all__ = [
    "Experiment",
    "ExperimentTag",
    "Run",
    "RunParam",
    "RunMetric",
    "RunTag",
    "Dataset",
    "RunInput",
    "LoggedModel",
    "LoggedModelTag",
    "LoggedModelParam",
    "RunOutput",
    "ExperimentUserGrant",
    "ExperimentGroupGrant",
]

ACTIVE = "active"
DELETED = "deleted"
LIFECYCLE = [(ACTIVE, ACTIVE), (DELETED, DELETED)]


class Experiment(OwnedBy, models.Model):
    """A securable of its own: one owner (a user or a group) and grants of EXECUTE, MODIFY and
    ALL PRIVILEGES (permissions.py says what each allows). Experiment "0" ("Default") is
    created on first use with no owner and is shared: everyone may log runs into it, and each
    run there stays private to its owner."""

    DEFAULT_ID = 0
    securable_type = "experiment"
    name = models.CharField(max_length=500)
    owner_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    owner_group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    lifecycle_stage = models.CharField(max_length=16, choices=LIFECYCLE, default=ACTIVE)
    creation_time = models.BigIntegerField()
    last_update_time = models.BigIntegerField()

    class Meta:
        default_permissions = ()
        permissions = _perms(EXPERIMENT_PRIVILEGES)
        constraints = [
            models.UniqueConstraint(fields=["name"], name="experiment_name_unique"),
            models.CheckConstraint(
                condition=models.Q(owner_user__isnull=True) | models.Q(owner_group__isnull=True),
                name="experiment_at_most_one_owner",
            ),
        ]
        ordering = ["id"]

    @property
    def full_name(self):
        return self.name

    def __str__(self):
        return self.name


class ExperimentTag(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["experiment", "key"], name="experiment_tag_unique")]


class Run(models.Model):
    run_uuid = models.CharField(max_length=32, unique=True)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="runs")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    name = models.CharField(max_length=250, blank=True, default="")
    status = models.CharField(max_length=16, default="RUNNING")
    start_time = models.BigIntegerField()
    end_time = models.BigIntegerField(null=True, blank=True)
    lifecycle_stage = models.CharField(max_length=16, choices=LIFECYCLE, default=ACTIVE)

    class Meta:
        ordering = ["-start_time", "-id"]

    def __str__(self):
        return self.run_uuid


class RunParam(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="params")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="run_param_unique")]
        ordering = ["key"]


class RunMetric(models.Model):
    """Every logged value (the history); the latest per key is the one with the highest
    (step, timestamp)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metrics")
    key = models.CharField(max_length=250)
    value = models.FloatField(null=True)  # NaN is stored as NULL with is_nan
    is_nan = models.BooleanField(default=False)
    timestamp = models.BigIntegerField()
    step = models.BigIntegerField(default=0)
    model_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["key", "step", "timestamp", "id"]
        indexes = [models.Index(fields=["run", "key"], name="run_metric_key_idx")]


class RunTag(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="run_tag_unique")]
        ordering = ["key"]


class Dataset(models.Model):
    """What `mlflow.log_input` describes (lineage: tables → run → version)."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=500)
    digest = models.CharField(max_length=64)
    source_type = models.CharField(max_length=64, blank=True, default="")
    source = models.TextField(blank=True, default="")
    schema = models.TextField(blank=True, default="")
    profile = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name", "digest"], name="dataset_unique"),
        ]


class RunInput(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="inputs")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="inputs")
    tags = models.JSONField(default=list)  # [{key, value}], e.g. mlflow.data.context=training

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "dataset"], name="run_input_unique")]


class LoggedModel(models.Model):
    """An MLflow 3 logged model: files under mlartifacts/<exp>/models/<model_id>/artifacts."""

    PENDING = "LOGGED_MODEL_PENDING"
    READY = "LOGGED_MODEL_READY"
    FAILED = "LOGGED_MODEL_UPLOAD_FAILED"

    model_id = models.CharField(max_length=64, unique=True)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="logged_models")
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="logged_models")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    name = models.CharField(max_length=500)
    model_type = models.CharField(max_length=500, blank=True, default="")
    source_run_id = models.CharField(max_length=32, blank=True, default="")
    status = models.CharField(max_length=32, default=PENDING)
    status_message = models.TextField(blank=True, default="")
    lifecycle_stage = models.CharField(max_length=16, choices=LIFECYCLE, default=ACTIVE)
    creation_timestamp = models.BigIntegerField()
    last_updated_timestamp = models.BigIntegerField()

    class Meta:
        ordering = ["-creation_timestamp", "-id"]

    def __str__(self):
        return self.model_id


class LoggedModelTag(models.Model):
    logged_model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["logged_model", "key"], name="logged_model_tag_unique")]
        ordering = ["key"]


class LoggedModelParam(models.Model):
    logged_model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="params")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["logged_model", "key"], name="logged_model_param_unique")
        ]
        ordering = ["key"]


class RunOutput(models.Model):
    """`runs/outputs`: a logged model produced by a run (at a step)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="outputs")
    logged_model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="outputs")
    step = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "logged_model"], name="run_output_unique")]


# --- Grants on experiments: guardian's direct-foreign-key tables, as for catalogs and models ---
class ExperimentUserGrant(UserObjectPermissionBase):
    content_object = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="user_grants")


class ExperimentGroupGrant(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="group_grants")
