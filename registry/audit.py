"""The audit log: every service writes one event in the same transaction as its change."""

import contextvars

from .db import create
from .docs import model_id_of, write_with_docs
from .models import AuditEvent, ModelVersion

# Set per request by `registry.middleware.AuditContextMiddleware` ("from where").
remote_addr = contextvars.ContextVar("remote_addr", default=None)


def _type(obj):
    return "model_version" if isinstance(obj, ModelVersion) else obj.securable_type


def record(actor, action, obj, *, before=None, after=None, object_name=None):
    """The event, written in the change's transaction: inside `docs.changing`, at its end with
    the statement reading its first doc's source (`docs.write_with_docs`), else at once."""
    values = dict(
        actor=actor if actor and actor.pk else None,
        actor_name=getattr(actor, "username", "") or "",
        action=action,
        object_type=_type(obj),
        object_name=object_name or obj.full_name,
        model_id=model_id_of(obj),  # the model page's Activity
        before=before,
        after=after,
        remote_addr=remote_addr.get(),
    )
    if not write_with_docs(AuditEvent, values):
        create(AuditEvent, **values)
