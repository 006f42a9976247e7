"""The audit log: every service writes one event in the same transaction as its change."""

import contextvars

from .db import create
from .models import AuditEvent, ModelVersion, RegisteredModel

# Set per request by `registry.middleware.AuditContextMiddleware` ("from where").
remote_addr = contextvars.ContextVar("remote_addr", default=None)


def _describe(obj):
    if isinstance(obj, ModelVersion):
        return "model_version", obj.full_name, obj.model_id
    if isinstance(obj, RegisteredModel):
        return "registered_model", obj.full_name, obj.pk
    return obj.securable_type, obj.full_name, None


def record(actor, action, obj, *, before=None, after=None, object_name=None):
    object_type, name, model_id = _describe(obj)
    return create(
        AuditEvent,
        actor=actor if actor and actor.pk else None,
        actor_name=getattr(actor, "username", "") or "",
        action=action,
        object_type=object_type,
        object_name=object_name or name,
        model_id=model_id,
        before=before,
        after=after,
        remote_addr=remote_addr.get(),
    )
