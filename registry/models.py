"""The registry's tables: catalog → schema → registered model → version, plus aliases, tags,
grants (django-guardian direct-foreign-key tables) and the audit log.

Rules live in `names.py`, `permissions.py` and `services.py`; these classes only hold data.
"""

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models.functions import Lower
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

# Privileges as Unity Catalog spells them ↔ the codename of the Django permission behind each.
PRIVILEGE_CODENAMES = {
    "USE CATALOG": "use_catalog",
    "CREATE SCHEMA": "create_schema",
    "USE SCHEMA": "use_schema",
    "CREATE MODEL": "create_model",
    "EXECUTE": "execute",
    "APPLY TAG": "apply_tag",
    "ALL PRIVILEGES": "all_privileges",
    "MODIFY": "modify",  # experiments only (log runs into it)
}
CODENAME_PRIVILEGES = {v: k for k, v in PRIVILEGE_CODENAMES.items()}

# Which privileges may be granted on which kind of securable. A grant on a catalog applies to
# every schema and model in it, so a catalog accepts the privileges of its children too.
CATALOG_PRIVILEGES = ["USE CATALOG", "CREATE SCHEMA", "USE SCHEMA", "CREATE MODEL", "EXECUTE", "APPLY TAG", "ALL PRIVILEGES"]
SCHEMA_PRIVILEGES = ["USE SCHEMA", "CREATE MODEL", "EXECUTE", "APPLY TAG", "ALL PRIVILEGES"]
MODEL_PRIVILEGES = ["EXECUTE", "APPLY TAG", "ALL PRIVILEGES"]
# Experiments (MLflow tracking) are securables of their own, outside catalogs: what each
# privilege allows is documented in permissions.py's tracking section.
EXPERIMENT_PRIVILEGES = ["EXECUTE", "MODIFY", "ALL PRIVILEGES"]


def _perms(privileges):
    return [(PRIVILEGE_CODENAMES[p], p) for p in privileges]


class OwnedBy:
    """The owner of a row with `owner_user` and `owner_group` columns: a user or a group."""

    @property
    def owner(self):
        return self.owner_user or self.owner_group

    @property
    def owner_name(self):
        if self.owner_user_id:
            return self.owner_user.username
        if self.owner_group_id:
            return self.owner_group.name
        return ""


class Securable(OwnedBy, models.Model):
    """Something with a name, a Markdown description and an owner (a user or a group)."""

    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    owner_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    owner_group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


def _one_owner(prefix):
    return models.CheckConstraint(
        condition=(
            models.Q(owner_user__isnull=False, owner_group__isnull=True)
            | models.Q(owner_user__isnull=True, owner_group__isnull=False)
        ),
        name=f"{prefix}_exactly_one_owner",
    )


class Catalog(Securable):
    securable_type = "catalog"

    class Meta:
        default_permissions = ()
        permissions = _perms(CATALOG_PRIVILEGES)
        constraints = [models.UniqueConstraint(fields=["name"], name="catalog_name_unique"), _one_owner("catalog")]
        ordering = ["name"]

    @property
    def full_name(self):
        return self.name

    def __str__(self):
        return self.name


class Schema(Securable):
    securable_type = "schema"
    catalog = models.ForeignKey(Catalog, on_delete=models.PROTECT, related_name="schemas")

    class Meta:
        default_permissions = ()
        permissions = _perms(SCHEMA_PRIVILEGES)
        constraints = [
            models.UniqueConstraint(fields=["catalog", "name"], name="schema_name_unique"),
            _one_owner("schema"),
        ]
        ordering = ["name"]

    @property
    def full_name(self):
        return f"{self.catalog.name}.{self.name}"

    def __str__(self):
        return self.full_name


class RegisteredModel(Securable):
    securable_type = "registered_model"
    schema = models.ForeignKey(Schema, on_delete=models.PROTECT, related_name="models")
    # Denormalised `catalog.schema.model`: the MLflow API looks models up by it, search sorts by it.
    full_name = models.CharField(max_length=767, unique=True)
    # Highest version number ever allocated; bumped under a row lock, never decremented, so a
    # deleted version's number is never reused.
    last_version = models.PositiveIntegerField(default=0)

    class Meta:
        default_permissions = ()
        permissions = _perms(MODEL_PRIVILEGES)
        constraints = [
            models.UniqueConstraint(fields=["schema", "name"], name="model_name_unique"),
            _one_owner("model"),
        ]
        ordering = ["full_name"]
        indexes = [models.Index(fields=["updated_at"], name="model_updated_idx")]

    def __str__(self):
        return self.full_name


class ModelVersion(models.Model):
    PENDING = "PENDING_REGISTRATION"
    READY = "READY"
    FAILED = "FAILED_REGISTRATION"
    STATUSES = [(PENDING, PENDING), (READY, READY), (FAILED, FAILED)]

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=32, choices=STATUSES, default=PENDING)
    status_message = models.TextField(blank=True, default="")
    description = models.TextField(blank=True, default="")
    source = models.TextField(blank=True, default="")
    run_id = models.CharField(max_length=64, blank=True, default="")
    run_link = models.TextField(blank=True, default="")
    # {"inputs": [{"name", "type"}…], "outputs": […]} as MLflow's MLmodel `signature` holds it.
    signature = models.JSONField(null=True, blank=True)
    copied_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="copies")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "version"], name="version_number_unique")]
        ordering = ["-version"]
        indexes = [
            models.Index(fields=["updated_at"], name="version_updated_idx"),
            models.Index(fields=["run_id"], name="version_run_idx"),
        ]

    @property
    def full_name(self):
        return f"{self.model.full_name}/{self.version}"

    def __str__(self):
        return f"{self.model.full_name} v{self.version}"


class AliasQuerySet(models.QuerySet):
    def named(self, name):
        """Aliases called `name` in any case, compared as `alias_name_unique` compares names (the
        database's LOWER): every lookup of an alias by its name goes through here, so a read
        finds exactly the alias a write would collide with."""
        return self.alias(lowered=Lower("name")).filter(lowered=Lower(models.Value(name)))


class Alias(models.Model):
    """A named pointer to one version. Unique per model, case-insensitively."""

    objects = AliasQuerySet.as_manager()

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="aliases")
    name = models.CharField(max_length=255)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(Lower("name"), "model", name="alias_name_unique")]
        ordering = ["name"]

    def __str__(self):
        return f"{self.model.full_name}@{self.name}"


class ModelTag(models.Model):
    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "key"], name="model_tag_unique")]
        ordering = ["key"]
        indexes = [models.Index(fields=["key", "value"], name="model_tag_kv_idx")]


class VersionTag(models.Model):
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "key"], name="version_tag_unique")]
        ordering = ["key"]
        indexes = [models.Index(fields=["key", "value"], name="version_tag_kv_idx")]


class ModelDoc(models.Model):
    """A registered model as the MLflow API shows it (`registered-models/get`, `search`): its
    JSON, rewritten at the end of every change to the model or to anything under it, so that a
    read copies it instead of assembling it (`registry/docs.py`). `revision` counts rewrites;
    `people` is the `Generation` of user and group names it was written at (a doc written
    before a name changed is not used)."""

    model = models.OneToOneField(RegisteredModel, on_delete=models.CASCADE, primary_key=True, related_name="doc")
    revision = models.BigIntegerField(default=0)
    people = models.BigIntegerField(default=0)
    json = models.TextField()


class Generation(models.Model):
    """A counter bumped when something changes that many rows' kept data depend on: `people`,
    when a user's or a group's name changes or one is deleted (`registry/docs.py`)."""

    name = models.CharField(max_length=32, primary_key=True)
    value = models.BigIntegerField(default=0)


# --- Grants: guardian's direct-foreign-key tables (fast joins, no orphans after a delete) ----
class CatalogUserGrant(UserObjectPermissionBase):
    content_object = models.ForeignKey(Catalog, on_delete=models.CASCADE, related_name="user_grants")


class CatalogGroupGrant(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Catalog, on_delete=models.CASCADE, related_name="group_grants")


class SchemaUserGrant(UserObjectPermissionBase):
    content_object = models.ForeignKey(Schema, on_delete=models.CASCADE, related_name="user_grants")


class SchemaGroupGrant(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Schema, on_delete=models.CASCADE, related_name="group_grants")


class ModelUserGrant(UserObjectPermissionBase):
    content_object = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="user_grants")


class ModelGroupGrant(GroupObjectPermissionBase):
    content_object = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="group_grants")


class AuditEvent(models.Model):
    """One change: who, what, on which object, before/after, when, from where."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    actor_name = models.CharField(max_length=150, blank=True, default="")
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=32)
    object_name = models.CharField(max_length=1024)
    # The model this event belongs to (for the model page's Activity); kept when it is deleted.
    model = models.ForeignKey(RegisteredModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["model", "-created_at"], name="audit_model_idx")]

    def __str__(self):
        return f"{self.actor_name} {self.action} {self.object_type} {self.object_name}"


# Models kept in their own modules, registered with this app by importing them here.
from .models_jobs import *  # noqa: E402,F401,F403
from .models_tracking import *  # noqa: E402,F401,F403
