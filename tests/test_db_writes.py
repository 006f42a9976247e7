"""The hottest writes (the audit log's row, a tag's value, an alias) go through `db.create` and
`db.update`, SQL written once instead of the ORM's per call: what they store must read back as
the ORM would have stored it, on SQLite and on PostgreSQL."""

from datetime import timedelta

import orjson

import pytest
from django.db.models import DateTimeField
from django.utils import timezone

from registry import audit, db, services
from registry.models import Alias, AuditEvent, Job, ModelDoc, ModelTag, ModelVersion, VersionTag


def test_a_tag_set_twice_is_one_row_and_two_audit_events_that_read_back_as_written(world):
    audit.remote_addr.set("203.0.113.9")
    try:
        services.model_tag_set(actor=world.alice, model=world.iris, key="stage", value="ünïcode ✓")
        services.model_tag_set(actor=world.alice, model=world.iris, key="stage", value="second")
    finally:
        audit.remote_addr.set(None)
    assert list(ModelTag.objects.filter(model=world.iris, key="stage").values_list("value", flat=True)) == ["second"]
    first, second = AuditEvent.objects.filter(action="set_tag", after__has_key="stage").order_by("id")
    assert (first.before, first.after) == (None, {"stage": "ünïcode ✓"})
    assert (second.before, second.after) == ({"stage": "ünïcode ✓"}, {"stage": "second"})
    for event in (first, second):
        assert (event.actor, event.actor_name, event.object_type, event.object_name, event.model) == (
            world.alice, "alice", "registered_model", "prod.ml_team.iris", world.iris)
        assert event.remote_addr == "203.0.113.9"
        assert timezone.is_aware(event.created_at)
        assert abs(timezone.now() - event.created_at) < timedelta(minutes=1)
    assert second.created_at >= first.created_at


def test_a_version_tag_is_written_under_its_version(world):
    services.version_tag_set(actor=world.alice, version=world.v1, key="k", value="v")
    services.version_tag_set(actor=world.alice, version=world.v1, key="k", value="w")
    assert list(VersionTag.objects.filter(key="k").values_list("version", "value")) == [(world.v1.pk, "w")]
    event = AuditEvent.objects.filter(action="set_tag").latest("id")
    assert (event.object_type, event.model, event.before) == ("model_version", world.iris, {"k": "v"})


def test_moving_an_alias_changes_its_row_alone(world):
    services.alias_set(actor=world.alice, model=world.iris, alias="Challenger", version=1)
    champion = Alias.objects.get(model=world.iris, name="Champion")
    challenger = Alias.objects.get(model=world.iris, name="Challenger")
    services.alias_set(actor=world.alice, model=world.iris, alias="challenger", version=2)
    champion_after, challenger_after = (Alias.objects.get(pk=a.pk) for a in (champion, challenger))
    assert (champion_after.version, champion_after.name, champion_after.updated_at) == (
        world.v2, "Champion", champion.updated_at)
    # Renamed to the case given, as MLflow's alias set does; a new updated_at.
    assert (challenger_after.version, challenger_after.name) == (world.v2, "challenger")
    assert challenger_after.updated_at > challenger.updated_at


def test_update_counts_the_rows_it_changed(world):
    alias = Alias.objects.get(model=world.iris, name="Champion")
    assert db.update(Alias, alias.pk, version=world.v1, updated_at=timezone.now()) == 1
    assert Alias.objects.get(pk=alias.pk).version == world.v1
    assert db.update(Alias, alias.pk + 1000, version=world.v1, updated_at=timezone.now()) == 0


def _row(instance):
    """Every concrete column of `instance` as stored, but its id and timestamps."""
    fresh = type(instance).objects.get(pk=instance.pk)
    return {f.attname: getattr(fresh, f.attname) for f in fresh._meta.concrete_fields
            if f.attname != "id" and not isinstance(f, DateTimeField)}


# (model, values for the i-th row); `differs`: the field set apart by i (unique constraints).
CASES = {
    "tag": (ModelTag, lambda w, i: {"model": w.iris, "key": f"bare{i}"}, "key"),  # value: its default
    "version": (ModelVersion, lambda w, i: {"model": w.churn, "version": 7 + i, "source": "runs:/x/model",
                                             "signature": {"inputs": "[]"}, "created_by": w.admin}, "version"),
    "job": (Job, lambda w, i: {"kind": Job.REGISTER, "state": Job.QUEUED, "created_by": w.alice, "model": w.iris,
                               "target_name": "prod.ml_team.iris/3", "payload": {"lineage_inputs": [{"name": "ä"}]}},
            None),
    "event": (AuditEvent, lambda w, i: {"actor": None, "action": "x", "object_type": "t", "object_name": "n"}, None),
}


@pytest.mark.parametrize("case", CASES)
def test_create_stores_what_the_orm_would_store(world, case):
    model, values, differs = CASES[case]
    ours = db.create(model, **values(world, 0))
    assert ours.pk is not None and not ours._state.adding
    theirs = model.objects.create(**values(world, 1))
    ours_row, theirs_row = _row(ours), _row(theirs)
    if differs:
        assert (ours_row.pop(differs), theirs_row.pop(differs)) == (values(world, 0)[differs], values(world, 1)[differs])
    assert ours_row == theirs_row
    stored = model.objects.get(pk=ours.pk)
    for f in model._meta.concrete_fields:  # auto_now / auto_now_add filled in, as save() does
        if isinstance(f, DateTimeField) and (f.auto_now or f.auto_now_add):
            assert getattr(stored, f.attname) == getattr(ours, f.attname)
            assert abs(getattr(stored, f.attname) - timezone.now()) < timedelta(minutes=1)


def test_a_model_with_its_own_save_is_refused(world):
    from django.contrib.auth.models import User  # AbstractBaseUser.save clears the raw password

    with pytest.raises(AssertionError, match="own save"):
        db.create(User, username="nobody")
    with pytest.raises(AssertionError, match="own save"):
        db.update(User, world.alice.pk, first_name="A")


def test_update_with_where_changes_the_row_only_while_those_fields_hold_those_values(world):
    tag = ModelTag.objects.get(model=world.iris, key="task")
    assert db.update(ModelTag, tag.pk, where={"value": "something else"}, value="x") == 0
    assert ModelTag.objects.get(pk=tag.pk).value == "classification"
    assert db.update(ModelTag, tag.pk, where={"value": "classification", "key": "task"}, value="x") == 1
    assert ModelTag.objects.get(pk=tag.pk).value == "x"


def test_create_with_skip_conflict_writes_nothing_where_the_row_exists(world):
    """A primary key the row brings itself (ModelDoc's is its model's id) is written too."""
    ModelDoc.objects.filter(model=world.iris).delete()
    made = db.create(ModelDoc, skip_conflict=True, model_id=world.iris.pk, revision=7, people=0, json="{}")
    assert made.pk == world.iris.pk
    assert db.create(ModelDoc, skip_conflict=True, model_id=world.iris.pk, revision=8, people=0, json="[]") is None
    assert ModelDoc.objects.filter(model=world.iris).values_list("revision", "json").get() == (7, "{}")


@pytest.mark.parametrize("case", CASES)
def test_create_many_stores_what_bulk_create_would_store(world, case):
    model, values, differs = CASES[case]
    before = set(model.objects.values_list("pk", flat=True))
    db.create_many(model, [values(world, 0), values(world, 1)])
    ours = list(model.objects.exclude(pk__in=before).order_by("pk"))
    model.objects.bulk_create([model(**values(world, 2)), model(**values(world, 3))])
    theirs = list(model.objects.exclude(pk__in=before | {o.pk for o in ours}).order_by("pk"))
    assert len(ours) == len(theirs) == 2
    for i, (mine, other) in enumerate(zip(ours, theirs)):
        mine_row, other_row = _row(mine), _row(other)
        if differs:
            assert (mine_row.pop(differs), other_row.pop(differs)) == (values(world, i)[differs],
                                                                       values(world, i + 2)[differs])
        assert mine_row == other_row
    db.create_many(model, [])  # nothing to write: no statement, no error
    assert model.objects.exclude(pk__in=before).count() == 4


def test_update_with_increment_adds_one_to_those_fields_only_where_the_row_matches(world):
    job = db.create(Job, kind=Job.REGISTER, state=Job.QUEUED, created_by=world.alice, model=world.iris, attempts=2)
    assert db.update(Job, job.pk, where={"state": Job.QUEUED}, increment=("attempts",), state=Job.RUNNING,
                     lease="abc") == 1
    assert Job.objects.values_list("state", "lease", "attempts").get(pk=job.pk) == (Job.RUNNING, "abc", 3)
    # No longer QUEUED: nothing changes, the count neither.
    assert db.update(Job, job.pk, where={"state": Job.QUEUED}, increment=("attempts",), state=Job.RUNNING,
                     lease="def") == 0
    assert Job.objects.values_list("state", "lease", "attempts").get(pk=job.pk) == (Job.RUNNING, "abc", 3)


def test_a_changes_audit_events_are_written_at_its_end_with_its_docs_in_their_order(world):
    """Inside a change (`docs.changing`) an audit event is written at the change's end, in the
    statement that reads the first doc's source on PostgreSQL (one round trip fewer); several in
    one INSERT, in the order recorded; none when the change fails."""
    from django.db import connection

    from registry import docs

    last = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
    statements = []

    def note(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(note), docs.changing(world.iris.pk):
        services.model_tag_set(actor=world.alice, model=world.iris, key="a", value="1")
        services.alias_set(actor=world.alice, model=world.iris, alias="Challenger", version=1)
        services.model_update(actor=world.alice, model=world.iris, description="changed")
        assert not AuditEvent.objects.filter(id__gt=last).exists()  # not yet
    events = list(AuditEvent.objects.filter(id__gt=last).order_by("id").values_list("action", "model", "after"))
    assert events == [("set_tag", world.iris.pk, {"a": "1"}), ("set_alias", world.iris.pk, {"alias": "Challenger", "version": 1}),
                      ("update_description", world.iris.pk, {"description": "changed"})]
    inserts = [sql for sql in statements if 'INSERT INTO "registry_auditevent"' in sql]
    assert len(inserts) == 1
    if connection.vendor == "postgresql":
        assert inserts[0].startswith('WITH "before" AS (INSERT INTO "registry_auditevent"') and "registry_modeldoc" in inserts[0]
    doc = orjson.loads(ModelDoc.objects.get(model=world.iris).json)
    assert doc["description"] == "changed" and {"key": "a", "value": "1"} in doc["tags"]

    with pytest.raises(RuntimeError), docs.changing(world.iris.pk):
        services.model_tag_set(actor=world.alice, model=world.iris, key="b", value="2")
        raise RuntimeError("the change fails")
    assert AuditEvent.objects.filter(id__gt=last).count() == 3
    assert not ModelTag.objects.filter(model=world.iris, key="b").exists()


def test_a_change_of_no_model_writes_its_audit_event_at_its_end(world):
    last = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
    services.schema_update(actor=world.admin, schema=world.ml_team, description="s")
    assert list(AuditEvent.objects.filter(id__gt=last).values_list("action", "object_name", "model")) == [
        ("update_description", "prod.ml_team", None)]
