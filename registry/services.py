"""Every write to the registry. Keyword-only, `<entity>_<action>(*, actor, …)`.

Each function checks the actor's privileges through `permissions.require`, validates through
`names`, changes rows under `transaction.atomic` and writes its audit event in the same
transaction; a change to a model or anything under it runs in `docs.changing`, which rewrites
the model's kept JSON at its end. Pages, the REST API and Celery tasks call these and nothing lower.
"""

from functools import cache

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, connections, router, transaction
from django.db.models import F
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from . import audit, docs, names
from .db import compiled_objects, compiled_rows, create, reused_plans, update
from .errors import AlreadyExists, Forbidden, InvalidInput, NotFound
from .models import (
    PRIVILEGE_CODENAMES,
    Alias,
    Catalog,
    Experiment,
    ModelTag,
    ModelVersion,
    RegisteredModel,
    Schema,
    VersionTag,
)
from .permissions import GRANT_TABLES, normalise_privilege, require


def _limit(name):
    return settings.REGISTRY[name]


# --- Principals -----------------------------------------------------------------------------
def principal_resolve(name):
    """`alice`, `ml-admins`, or explicit `user:alice` / `group:ml-admins` → User or Group."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("The principal must be a user or group name.")
    name = name.strip()
    User = get_user_model()
    kind = None
    if name.startswith(("user:", "group:")):
        kind, name = name.split(":", 1)
    user = User.objects.filter(username=name, is_active=True).first() if kind in (None, "user") else None
    group = Group.objects.filter(name=name).first() if kind in (None, "group") else None
    if user and group:
        raise InvalidInput(f"{name!r} is both a user and a group: write user:{name} or group:{name}.")
    if not (user or group):
        raise InvalidInput(f"No user or group is named {name[:150]!r}.")
    return user or group


def principal_name(principal):
    return principal.username if hasattr(principal, "username") else principal.name


def _owner_fields(principal):
    if isinstance(principal, Group):
        return {"owner_user": None, "owner_group": principal}
    return {"owner_user": principal, "owner_group": None}


def _require_superuser(actor, what):
    if not (actor and actor.is_active and actor.is_superuser):
        raise Forbidden(f"{what} requires a metastore admin (superuser).", missing=["ADMIN"])


# --- Catalogs and schemas -------------------------------------------------------------------
def catalog_create(*, actor, name, description="", owner=None):
    _require_superuser(actor, "Creating a catalog")
    name = names.validate_name_part(name, "catalog name")
    description = names.validate_description(description)
    with transaction.atomic():
        if Catalog.objects.filter(name=name).exists():
            raise AlreadyExists(f"Catalog '{name}' already exists.")
        catalog = Catalog.objects.create(
            name=name, description=description, created_by=actor, **_owner_fields(owner or actor)
        )
        audit.record(actor, "create", catalog, after={"description": description, "owner": catalog.owner_name})
    return catalog


def catalog_update(*, actor, catalog, description):
    require(actor, "catalog.edit", catalog)
    return _update_description(actor, catalog, description)


def catalog_delete(*, actor, catalog):
    require(actor, "catalog.delete", catalog)
    with transaction.atomic():
        if catalog.schemas.exists():
            raise InvalidInput(f"Catalog '{catalog.name}' is not empty: delete its schemas first.")
        audit.record(actor, "delete", catalog, before={"description": catalog.description})
        catalog.delete()


def schema_create(*, actor, catalog, name, description=""):
    require(actor, "catalog.create_schema", catalog)
    name = names.validate_name_part(name, "schema name")
    description = names.validate_description(description)
    with transaction.atomic():
        if Schema.objects.filter(catalog=catalog, name=name).exists():
            raise AlreadyExists(f"Schema '{catalog.name}.{name}' already exists.")
        schema = Schema.objects.create(
            catalog=catalog, name=name, description=description, created_by=actor, **_owner_fields(actor)
        )
        audit.record(actor, "create", schema, after={"description": description, "owner": actor.username})
    return schema


def schema_update(*, actor, schema, description):
    require(actor, "schema.edit", schema)
    return _update_description(actor, schema, description)


def schema_delete(*, actor, schema):
    require(actor, "schema.delete", schema)
    with transaction.atomic():
        if schema.models.exists():
            raise InvalidInput(f"Schema '{schema.full_name}' is not empty: delete its models first.")
        audit.record(actor, "delete", schema, before={"description": schema.description})
        schema.delete()


def _update_description(actor, obj, description):
    description = names.validate_description(description)
    with docs.changing(docs.model_id_of(obj)):
        before = obj.description
        type(obj).objects.filter(pk=obj.pk).update(description=description, updated_at=timezone.now())
        obj.description = description
        audit.record(actor, "update_description", obj, before={"description": before}, after={"description": description})
    return obj


# --- Registered models ----------------------------------------------------------------------
def model_create(*, actor, schema, name, description="", tags=None):
    require(actor, "schema.create_model", schema)
    name = names.validate_name_part(name, "model name")
    description = names.validate_description(description)
    tags = _validated_tags(tags)
    full_name = f"{schema.catalog.name}.{schema.name}.{name}"
    try:
        with docs.changing() as changed:
            model = RegisteredModel.objects.create(
                schema=schema, name=name, full_name=full_name, description=description,
                created_by=actor, **_owner_fields(actor),
            )
            changed.add(model.pk)
            ModelTag.objects.bulk_create([ModelTag(model=model, key=k, value=v) for k, v in tags.items()])
            audit.record(actor, "create", model, after={"description": description, "tags": tags})
    except IntegrityError:
        raise AlreadyExists(f"Registered Model (name={full_name}) already exists.") from None
    return model


def model_update(*, actor, model, description):
    require(actor, "model.edit", model)
    return _update_description(actor, model, description)


def securable_update(*, actor, obj, description=None, new_name=None, owner=None):
    """Unity Catalog's PATCH of a catalog, schema or model: its comment (`description`), its name
    (models only: a catalog or schema keeps its own) and its owner, each when given, all or
    nothing in one transaction (a model's doc rewritten once, after all of them)."""
    if new_name is not None and not isinstance(obj, RegisteredModel) and new_name != obj.name:
        raise InvalidInput(f"A {obj.securable_type} cannot be renamed.")
    with docs.changing(docs.model_id_of(obj)):
        if description is not None:
            if isinstance(obj, Catalog):
                catalog_update(actor=actor, catalog=obj, description=description)
            elif isinstance(obj, Schema):
                schema_update(actor=actor, schema=obj, description=description)
            else:
                model_update(actor=actor, model=obj, description=description)
        if new_name is not None and isinstance(obj, RegisteredModel):
            model_rename(actor=actor, model=obj, new_name=new_name)
        if owner is not None:
            owner_transfer(actor=actor, obj=obj, principal=owner)
    return obj


def model_rename(*, actor, model, new_name):
    """Rename within the model's schema. `new_name` is the new model part or the full
    `catalog.schema.model` name (whose catalog and schema must stay the same)."""
    require(actor, "model.rename", model)
    if isinstance(new_name, str) and "." in new_name:
        catalog_name, schema_name, new_part = names.parse_full_name(new_name)
        if (catalog_name, schema_name) != (model.schema.catalog.name, model.schema.name):
            raise InvalidInput(
                f"A model cannot be renamed into another schema ({catalog_name}.{schema_name}); "
                "copy its versions instead."
            )
    else:
        new_part = names.validate_name_part(new_name, "model name")
    old_full = model.full_name
    new_full = f"{model.schema.catalog.name}.{model.schema.name}.{new_part}"
    if new_full == old_full:
        return model
    try:
        with docs.changing(model.pk):
            RegisteredModel.objects.filter(pk=model.pk).update(name=new_part, full_name=new_full, updated_at=timezone.now())
            model.name, model.full_name = new_part, new_full
            audit.record(actor, "rename", model, before={"name": old_full}, after={"name": new_full})
    except IntegrityError:
        raise AlreadyExists(f"Registered Model (name={new_full}) already exists.") from None
    return model


def model_delete(*, actor, model):
    """Metadata goes at once (the name is free again at once); the files in a job, queued on
    commit (no broker: `BackgroundUnavailable`, nothing deleted)."""
    from .jobs import files_delete_later

    require(actor, "model.delete", model)
    with transaction.atomic():
        version_ids = list(model.versions.values_list("pk", flat=True))
        files_delete_later(actor=actor, target_name=model.full_name, version_ids=version_ids)
        audit.record(actor, "delete", model, before={"versions": len(version_ids), "description": model.description})
        model.delete()


def model_tag_set(*, actor, model, key, value):
    require(actor, "model.tag", model)
    return _tag_set(actor, model, ModelTag, {"model": model}, key, value)


def model_tag_delete(*, actor, model, key):
    require(actor, "model.tag", model)
    return _tag_delete(actor, model, ModelTag, {"model": model}, key)


def _validated_tags(tags):
    result = {}
    for item in tags or []:
        if isinstance(item, dict):
            key, value = item.get("key"), item.get("value", "")
        else:
            key, value = item
        key, value = names.validate_tag(key, value)
        result[key] = value
    if len(result) > _limit("MAX_TAGS_PER_OBJECT"):
        raise InvalidInput(f"At most {_limit('MAX_TAGS_PER_OBJECT')} tags are allowed on one object.")
    return result


def _tag_set(actor, obj, table, owner_kw, key, value):
    key, value = names.validate_tag(key, value)
    (owner_field, owner), = owner_kw.items()
    with docs.changing(docs.model_id_of(obj)):
        replaced = _tag_replace(table, owner_field, owner.pk, key, value)
        if replaced is None:  # not on PostgreSQL
            existing = next(iter(compiled_objects(
                ("tag-for-update", table, owner_field), lambda owner, key: table.objects.select_for_update().filter(
                    **{f"{owner_field}_id": owner}, key=key)[:1], owner=owner.pk, key=key)), None)
            if existing is not None:
                update(table, existing.pk, value=value)
            replaced = () if existing is None else (existing.value,)
        if not replaced:
            if table.objects.filter(**owner_kw).count() >= _limit("MAX_TAGS_PER_OBJECT"):
                raise InvalidInput(
                    f"{obj.full_name} already has {_limit('MAX_TAGS_PER_OBJECT')} tags, the most allowed; "
                    "delete one first."
                )
            create(table, key=key, value=value, **owner_kw)
        audit.record(actor, "set_tag", obj, before={key: replaced[0]} if replaced else None, after={key: value})


def _tag_replace(table, owner_field, owner, key, value):
    """On PostgreSQL, the tag `key` of `owner` set to `value` if it has one, in one statement
    (its row locked as it is read, as `select_for_update` would): (its value before,), or ()
    when it has none (nothing changed). None on another database (nothing done). Setting a tag
    that is there was two round trips, the read and the write."""
    connection = connections[router.db_for_write(table)]
    if connection.vendor != "postgresql":
        return None
    with reused_plans(connection.alias), connection.cursor() as cursor:
        cursor.execute(_tag_replace_sql(connection.alias, table, owner_field), [value, owner, key])
        return cursor.fetchone() or ()


@cache
def _tag_replace_sql(using, table, owner_field):
    quote, meta = connections[using].ops.quote_name, table._meta
    name, pk, owner, key, value = (quote(n) for n in (
        meta.db_table, meta.pk.column, meta.get_field(owner_field).column, meta.get_field("key").column,
        meta.get_field("value").column))
    return (f'UPDATE {name} AS "tag" SET {value} = %s FROM (SELECT {pk}, {value} FROM {name} WHERE {owner} = %s '
            f'AND {key} = %s FOR UPDATE) AS "old" WHERE "tag".{pk} = "old".{pk} RETURNING "old".{value}')


def _tag_delete(actor, obj, table, owner_kw, key):
    """Deleting a tag that is not there succeeds and changes nothing (as MLflow does)."""
    if not isinstance(key, str) or not key:
        raise InvalidInput("The tag key must not be empty.")
    with docs.changing(docs.model_id_of(obj)):
        existing = table.objects.filter(key=key, **owner_kw).first()
        if existing is None:
            return
        existing.delete()
        audit.record(actor, "delete_tag", obj, before={key: existing.value})


# --- Versions -------------------------------------------------------------------------------
def version_create(
    *, actor, model, source="", run_id="", run_link="", description="", tags=None, signature=None,
    status=ModelVersion.PENDING, status_message="", copied_from=None,
):
    """Allocate the next number under a row lock on the model; numbers are never reused.
    Inside a caller's transaction (a registration or copy job's, `jobs`) it adds no savepoint:
    nothing here is retried, a failure rolls back the whole change, and on PostgreSQL each
    savepoint was two more round trips of the MLflow client's most common write."""
    require(actor, "model.create_version", model)
    description = names.validate_description(description)
    tags = _validated_tags(tags)
    with docs.changing(model.pk, savepoint=False):
        number = _next_version_number(model)
        version = create(
            ModelVersion,
            model=model, version=number, source=source or "", run_id=run_id or "", run_link=run_link or "",
            description=description, signature=signature, status=status, status_message=status_message,
            copied_from=copied_from, created_by=actor if actor and actor.pk else None,
        )
        VersionTag.objects.bulk_create([VersionTag(version=version, key=k, value=v) for k, v in tags.items()])
        version.model = model
        audit.record(actor, "create", version, after={"source": source, "run_id": run_id, "status": status})
    return version


def _next_version_number(model):
    """Allocate `model`'s next version number: one `UPDATE … RETURNING` that increments
    `last_version` and takes the model row's lock until the transaction ends, so concurrent
    creators queue on it and each increments the value the one before committed (a locking
    read then an UPDATE did the same in two round trips). A model deleted meanwhile: NotFound."""
    using = router.db_for_write(RegisteredModel)
    ops = connections[using].ops
    table, last, updated, pk = (ops.quote_name(n) for n in (
        RegisteredModel._meta.db_table, "last_version", "updated_at", RegisteredModel._meta.pk.column))
    with reused_plans(using), connections[using].cursor() as cursor:  # prepared: planned once per connection
        cursor.execute(
            f"UPDATE {table} SET {last} = {last} + 1, {updated} = %s WHERE {pk} = %s RETURNING {last}",
            [ops.adapt_datetimefield_value(timezone.now()), model.pk],
        )
        row = cursor.fetchone()
    if row is None:
        raise NotFound(f"Registered Model with name={model.full_name} not found")
    return row[0]


def version_set_status(*, version, status, message=""):
    """Used by registration jobs (the system, not a user)."""
    with docs.changing(version.model_id):
        ModelVersion.objects.filter(pk=version.pk).update(status=status, status_message=message, updated_at=timezone.now())
        _status_changed(version, status, message)
    return version


def version_make_ready(*, version, **fields):
    """PENDING → READY (with `fields`, e.g. its signature) and the audit event, in the caller's
    transaction (a job's finish). One conditional UPDATE, which is also the check that nobody
    deleted or changed the version meanwhile and the row's lock: False, and nothing written,
    when it is no longer PENDING."""
    with docs.changing(version.model_id, savepoint=False):
        if not update(ModelVersion, version.pk, where={"status": ModelVersion.PENDING}, status=ModelVersion.READY,
                      status_message="", updated_at=timezone.now(), **fields):
            return False
        _status_changed(version, ModelVersion.READY, "")
    return True


def _status_changed(version, status, message):
    audit.record(None, "status", version, before={"status": version.status}, after={"status": status, "message": message})
    version.status, version.status_message = status, message


def version_update(*, actor, version, description):
    require(actor, "model.edit", version.model)
    return _update_description(actor, version, description)


def version_delete(*, actor, version):
    """The row goes at once; the files in a job, as for `model_delete`."""
    from .jobs import files_delete_later

    require(actor, "model.delete", version.model)
    with docs.changing(version.model_id):
        files_delete_later(actor=actor, target_name=version.full_name, version_ids=[version.pk], model=version.model)
        audit.record(actor, "delete", version, before={"status": version.status, "source": version.source})
        version.delete()


def version_tag_set(*, actor, version, key, value):
    require(actor, "model.tag", version.model)
    return _tag_set(actor, version, VersionTag, {"version": version}, key, value)


def version_tag_delete(*, actor, version, key):
    require(actor, "model.tag", version.model)
    return _tag_delete(actor, version, VersionTag, {"version": version}, key)


# --- Aliases --------------------------------------------------------------------------------
def alias_set(*, actor, model, alias, version):
    """Point `alias` at version number `version`, creating or moving it atomically."""
    require(actor, "model.alias", model)
    alias = names.validate_alias(alias)
    number = names.validate_version_number(version)
    with docs.changing(model.pk):
        # The target version, with the model's row locked (one writer of its aliases at a time),
        # in one statement; the alias is read after the lock is held.
        target = next(iter(compiled_objects(("alias-target",), _alias_target, model=model.pk, number=number)), None)
        if target is None:
            raise NotFound(f"Model Version (name={model.full_name}, version={number}) not found", field="version")
        moved = _alias_move(model.pk, alias, target.pk)
        if moved is None:  # not on PostgreSQL
            existing = compiled_rows(("alias-named",), _alias_named, model=model.pk, alias=alias)
            if existing:
                update(Alias, existing[0]["id"], version=target, name=alias, updated_at=timezone.now())
            moved = (existing[0]["name"], existing[0]["number"]) if existing else ()
        if not moved:
            if Alias.objects.filter(model=model).count() >= _limit("MAX_ALIASES_PER_MODEL"):
                raise InvalidInput(
                    f"{model.full_name} already has {_limit('MAX_ALIASES_PER_MODEL')} aliases, the most "
                    "allowed; delete or move one instead."
                )
            create(Alias, model=model, version=target, name=alias)
        audit.record(actor, "set_alias", model, before={"alias": moved[0], "version": moved[1]} if moved else None,
                     after={"alias": alias, "version": number})
    return target


def _alias_move(model, alias, version):
    """On PostgreSQL, the alias of model `model` named `alias` in any case (as `Alias.objects.named`
    finds it) renamed `alias` and pointed at version `version` if the model has it, in one
    statement: (its name, version number before), or () when it has none (nothing changed). None
    on another database (nothing done). Moving an alias was two round trips, the read and the
    write. The caller holds the model's row lock, so no other writer of its aliases runs."""
    connection = connections[router.db_for_write(Alias)]
    if connection.vendor != "postgresql":
        return None
    with reused_plans(connection.alias), connection.cursor() as cursor:
        cursor.execute(_alias_move_sql(connection.alias), [version, alias, timezone.now(), model, alias])
        return cursor.fetchone() or ()


@cache
def _alias_move_sql(using):
    quote, aliases, versions = connections[using].ops.quote_name, Alias._meta, ModelVersion._meta
    table, pk = quote(aliases.db_table), quote(aliases.pk.column)
    name, version, updated, model = (quote(aliases.get_field(f).column) for f in ("name", "version", "updated_at", "model"))
    number = quote(versions.get_field("version").column)
    return (f'UPDATE {table} AS "alias" SET {version} = %s, {name} = %s, {updated} = %s FROM (SELECT "a".{pk}, '
            f'"a".{name}, "v".{number} FROM {table} AS "a" INNER JOIN {quote(versions.db_table)} AS "v" '
            f'ON "v".{quote(versions.pk.column)} = "a".{version} WHERE "a".{model} = %s AND LOWER("a".{name}) = '
            f'LOWER(%s) FOR UPDATE OF "a") AS "old" WHERE "alias".{pk} = "old".{pk} RETURNING "old".{name}, "old".{number}')


def _alias_target(model, number):
    return ModelVersion.objects.select_related("model").select_for_update(of=("model",)).filter(
        model_id=model, version=number)[:1]


def _alias_named(model, alias):
    """The alias of `model` named `alias` (`Alias.objects.named`): its id, name and version
    number. For moving and deleting."""
    return Alias.objects.named(alias).filter(model_id=model).values("id", "name", number=F("version__version"))[:1]


def alias_delete(*, actor, model, alias):
    require(actor, "model.alias", model)
    if not isinstance(alias, str) or not alias:
        raise InvalidInput("The alias must not be empty.")
    with docs.changing(model.pk):
        existing = compiled_rows(("alias-named",), _alias_named, model=model.pk, alias=alias)
        if not existing:
            return
        existing = existing[0]
        Alias.objects.filter(pk=existing["id"]).delete()
        audit.record(actor, "delete_alias", model, before={"alias": existing["name"], "version": existing["number"]})


# --- Grants and ownership -------------------------------------------------------------------
def _manage_action(obj):
    return {"catalog": "catalog.manage", "schema": "schema.manage", "registered_model": "model.manage",
            "experiment": "experiment.manage"}[obj.securable_type]


def grants_change(*, actor, obj, changes):
    """Unity Catalog's PATCH …/permissions: `changes = [{principal, add: [...], remove: [...]}]`.
    All changes or none."""
    require(actor, _manage_action(obj), obj)
    if not isinstance(changes, list) or not changes:
        raise InvalidInput("'changes' must be a non-empty list of {principal, add, remove}.")
    plan = []
    for change in changes:
        if not isinstance(change, dict):
            raise InvalidInput("Each change must be an object {principal, add, remove}.")
        principal = principal_resolve(change.get("principal"))
        add = [normalise_privilege(p, obj.securable_type) for p in change.get("add") or []]
        remove = [normalise_privilege(p, obj.securable_type) for p in change.get("remove") or []]
        plan.append((principal, add, remove))
    with transaction.atomic():
        for principal, add, remove in plan:
            for privilege in add:
                assign_perm(PRIVILEGE_CODENAMES[privilege], principal, obj)
            for privilege in remove:
                remove_perm(PRIVILEGE_CODENAMES[privilege], principal, obj)
            audit.record(actor, "grant", obj, after={"principal": principal_name(principal), "add": add, "remove": remove})


def owner_transfer(*, actor, obj, principal):
    require(actor, _manage_action(obj), obj)
    new_owner = principal_resolve(principal) if isinstance(principal, str) else principal
    with docs.changing(docs.model_id_of(obj)):
        before = obj.owner_name
        fields = _owner_fields(new_owner)
        stamp = {"updated_at": timezone.now()} if hasattr(obj, "updated_at") else {}  # experiments have none
        type(obj).objects.filter(pk=obj.pk).update(**fields, **stamp)
        for key, value in fields.items():
            setattr(obj, key, value)
        audit.record(actor, "transfer_owner", obj, before={"owner": before}, after={"owner": principal_name(new_owner)})
    return obj


def grants_on(obj):
    """Rows for the Permissions tab: direct grants on `obj` and those inherited from its parents.
    [{principal, principal_type, privileges: [...], inherited_from: None | 'catalog x'}]"""
    chain = []
    if isinstance(obj, RegisteredModel):
        chain = [("model", obj, None), ("schema", obj.schema, f"schema {obj.schema.full_name}"),
                 ("catalog", obj.schema.catalog, f"catalog {obj.schema.catalog.name}")]
    elif isinstance(obj, Schema):
        chain = [("schema", obj, None), ("catalog", obj.catalog, f"catalog {obj.catalog.name}")]
    elif isinstance(obj, Experiment):
        chain = [("experiment", obj, None)]  # no parent to inherit from
    else:
        chain = [("catalog", obj, None)]
    rows = {}
    for level, target, inherited in chain:
        user_table, group_table = GRANT_TABLES[level]
        for table, kind, field in ((user_table, "user", "user__username"), (group_table, "group", "group__name")):
            for principal, codename in table.objects.filter(content_object=target).values_list(field, "permission__name"):
                key = (kind, principal, inherited)
                rows.setdefault(key, []).append(codename)
    order = {None: 0}
    return [
        {"principal": p, "principal_type": k, "privileges": sorted(privs), "inherited_from": inh}
        for (k, p, inh), privs in sorted(rows.items(), key=lambda kv: (order.get(kv[0][2], 1), kv[0][2] or "", kv[0][1]))
    ]
