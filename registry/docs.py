"""Each registered model's MLflow JSON, kept in its `ModelDoc` row.

A search page assembled each model from its row, its tags, aliases and newest version with that
version's tags: ~17 µs a model in PostgreSQL and ~12 µs in Python, most of a first page's time.
Instead, every change to a model or to anything under it rewrites the model's doc before its
transaction commits (`changing`), and a read copies the docs it lists (`current`, `listed`).

Why a doc always shows the committed rows (PostgreSQL, READ COMMITTED):
- `refresh` reads the model as the API shows it together with its doc's `revision` in one
  statement, then writes the new JSON only where the revision is still the one it read
  (`UPDATE … WHERE revision = %s`), else reads again. The UPDATE takes the doc row's lock; a
  rewrite that waited on another transaction's finds the revision moved once that one commits,
  and reads again, now seeing that transaction's change besides its own. So the last rewrite to
  commit was read after every earlier change had committed.
- The rewrite is the last write of its transaction (`changing` defers it to the end of the
  outermost block; a block rewrites its models' docs in id order), so a transaction holding a
  doc's lock waits for nothing else before it commits: no lock cycle goes through a doc. A
  caller that makes several changes in one transaction opens it with `changing` too (the jobs,
  `sources`, registering from a run page, the Unity Catalog model PATCH, `seed_demo`), not with
  `transaction.atomic`.
- User and group names (MLflow's `user_id`) change outside the registry's writes: a rename or a
  delete bumps the `people` generation (signals, `connect`); a doc written under an older
  generation is not used, and every doc is rewritten once the change commits.
A model without a usable doc (bulk-loaded rows, a database older than docs, a name just
changed) is read afresh, as before docs. `rebuild` writes the missing ones (after `migrate`, and
after a name changes). A row changed by hand in SQL, past the services, leaves its model's doc
as it was: `manage.py rewrite_model_docs` rewrites every doc.
"""

from contextlib import contextmanager

import orjson
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Case, F, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.db.models.signals import post_delete, post_migrate, post_save, pre_save

from .db import compiled_rows, create, insert_params, insert_rows, run, update
from .models import Generation, ModelDoc, ModelVersion, RegisteredModel

PEOPLE = "people"
_PENDING = "registry_docs_pending"  # on the connection: model ids the open change will rewrite
_ROWS = "registry_docs_rows"  # on the connection: rows the open change writes with its docs (`write_with_docs`)


def model_id_of(obj):
    """The registered model whose doc a change to `obj` changes: a model's own id, a version's
    model's; None for anything else (catalogs, schemas, experiments)."""
    if isinstance(obj, RegisteredModel):
        return obj.pk
    if isinstance(obj, ModelVersion):
        return obj.model_id
    return None


def _people():
    """The `people` generation, as a column (0 before it was ever bumped)."""
    return Coalesce(Subquery(Generation.objects.filter(name=PEOPLE).values("value")[:1]), Value(0))


def current(*, after_limit=False):
    """A model query's column: the model's doc (JSON text), NULL where it has none usable.
    Through a LEFT JOIN on the doc's table, not a subquery per row: PostgreSQL ran such a
    subplan for each listed model, ~2.4 µs each (a first page of 50: 0.48 → 0.38 ms).
    `after_limit`: as that subquery, which PostgreSQL evaluates after the sort and LIMIT, for
    the listed models only, where the join came before the sort, for every model the filter kept
    (a search of a tag 943 of 1,048 models have: 3.77 → 2.30 ms)."""
    if after_limit:
        return Subquery(ModelDoc.objects.filter(model_id=OuterRef("pk"), people=_people()).values("json")[:1])
    return Case(When(doc__people=_people(), then=F("doc__json")))


def listed(rows):
    """Rows (a model's id, its doc: `current`) → what each model's JSON is made of: the kept doc
    (`orjson.Fragment`, copied into the answer as it is), or for a model without one, its
    `serializers.model_out` computed afresh (in a statement of its own: a model deleted in
    between is left out, as if the rows had been read after). In the rows' order."""
    missing = [pk for pk, doc in rows if doc is None]
    if not missing:
        return [orjson.Fragment(doc) for _, doc in rows]
    from .api.mlflow.serializers import model_out
    from .selectors import registry_models_by_id

    fresh = {row["id"]: model_out(row) for row in registry_models_by_id(missing)}
    return [orjson.Fragment(doc) if doc is not None else fresh[pk] for pk, doc in rows
            if doc is not None or pk in fresh]


@contextmanager
def changing(*model_ids, using=DEFAULT_DB_ALIAS, savepoint=True):
    """A transaction (`transaction.atomic`) that changes the models `model_ids` or anything
    under them, whose docs it rewrites at its end; it yields the set of ids, for a change that
    makes a model (add its id). Inside another change: its models join the outer change's,
    which rewrites them all at its end."""
    connection = connections[using]
    pending = getattr(connection, _PENDING, None)
    if pending is not None:
        pending.update(pk for pk in model_ids if pk is not None)
        with transaction.atomic(using=using, savepoint=savepoint):
            yield pending
        return
    pending = {pk for pk in model_ids if pk is not None}
    setattr(connection, _PENDING, pending)
    setattr(connection, _ROWS, [])
    try:
        with transaction.atomic(using=using, savepoint=savepoint):
            yield pending
            before = _rows_statement(getattr(connection, _ROWS), using)
            for pk in sorted(pending):
                refresh(pk, using=using, before=before)
                before = None
            if before is not None:  # no doc to rewrite (a schema's change): the rows on their own
                run(before, using=using)
    finally:
        delattr(connection, _PENDING)
        delattr(connection, _ROWS)


def write_with_docs(model, values, *, using=DEFAULT_DB_ALIAS):
    """Inside a change (`changing`): the row `values` of `model` (as `db.create` takes them,
    filled in now) is inserted at the change's end, in the statement that reads its first doc's
    source (`db.compiled_rows(before=…)`): one round trip fewer for each write of the registry
    (its audit event). True; outside a change, False (nothing done). The row is written after
    the change's other statements: a row it references must still be there then (the model an
    audit event names is: a model is deleted outside a change)."""
    rows = getattr(connections[using], _ROWS, None)
    if rows is None:
        return False
    if rows and rows[0][0] is not model:
        raise AssertionError("docs.write_with_docs: one table's rows per change")
    rows.append((model, insert_params(model, values, using=using)))
    return True


def _rows_statement(rows, using):
    return insert_rows(rows[0][0], [params for _, params in rows], using=using) if rows else None


def _source(model):
    from .selectors import registry_models_query

    return registry_models_query(RegisteredModel.objects.filter(pk=model), doc_revision=Subquery(
        ModelDoc.objects.filter(model=OuterRef("pk")).values("revision")[:1]), people=_people())


def refresh(model_id, *, using=DEFAULT_DB_ALIAS, before=None):
    """Rewrite model `model_id`'s doc from its rows as they are now (see the module's docstring);
    nothing when the model is gone. Inside the caller's transaction. `before`: a data-modifying
    statement sent with the first read (`db.compiled_rows`)."""
    from .api.mlflow.serializers import model_out
    from .selectors import registry_model_rows

    while True:
        rows = compiled_rows(("model-doc-source",), _source, using=using, before=before, model=model_id)
        before = None
        if not rows:
            return
        row = rows[0]
        revision, people = row.pop("doc_revision"), row.pop("people")
        text = orjson.dumps(model_out(registry_model_rows([row])[0])).decode()
        if revision is None:  # none yet: written unless another transaction wrote one meanwhile
            written = create(ModelDoc, using=using, skip_conflict=True, model_id=model_id, revision=1, people=people,
                             json=text)
        else:
            written = update(ModelDoc, model_id, using=using, where={"revision": revision}, revision=revision + 1,
                             people=people, json=text)
        if written:
            return


def rebuild(*, every=False, using=DEFAULT_DB_ALIAS):
    """Write the doc of every model that has none usable (`every`: of every model), each in a
    transaction of its own; how many were written."""
    models = RegisteredModel.objects.using(using)
    if not every:
        models = models.exclude(pk__in=ModelDoc.objects.filter(people=_people()).values("model_id"))
    ids = list(models.values_list("pk", flat=True))
    for pk in ids:
        with transaction.atomic(using=using):
            refresh(pk, using=using)
    return len(ids)


# --- Names changed outside the registry ------------------------------------------------------
def people_changed(*, using=DEFAULT_DB_ALIAS):
    """Every doc stops being used (in the caller's transaction), and is rewritten once it commits."""
    generation = Generation.objects.using(using)
    if not generation.filter(name=PEOPLE).update(value=F("value") + 1):
        generation.get_or_create(name=PEOPLE, defaults={"value": 1})  # the first time (or after a flush)
    transaction.on_commit(lambda: rebuild(using=using), using=using)


def _name_field(sender):
    return "name" if sender is Group else get_user_model().USERNAME_FIELD


def _before_save(sender, instance, raw=False, update_fields=None, using=DEFAULT_DB_ALIAS, **kwargs):
    field = _name_field(sender)
    if raw or instance.pk is None or (update_fields is not None and field not in update_fields):
        return  # a login saves last_login alone
    old = sender.objects.using(using).filter(pk=instance.pk).values_list(field, flat=True).first()
    instance._registry_renamed = old is not None and old != getattr(instance, field)


def _after_save(sender, instance, using=DEFAULT_DB_ALIAS, **kwargs):
    if instance.__dict__.pop("_registry_renamed", False):
        people_changed(using=using)


def _after_delete(sender, instance, using=DEFAULT_DB_ALIAS, **kwargs):
    people_changed(using=using)


def _after_migrate(sender, using=DEFAULT_DB_ALIAS, **kwargs):
    if ModelDoc._meta.db_table in connections[using].introspection.table_names():  # not migrated back
        rebuild(using=using)


def connect(app_config):
    for sender in (get_user_model(), Group):
        pre_save.connect(_before_save, sender=sender, dispatch_uid=f"docs-before-{sender._meta.label}")
        post_save.connect(_after_save, sender=sender, dispatch_uid=f"docs-after-{sender._meta.label}")
        post_delete.connect(_after_delete, sender=sender, dispatch_uid=f"docs-delete-{sender._meta.label}")
    post_migrate.connect(_after_migrate, sender=app_config, dispatch_uid="docs-rebuild")
