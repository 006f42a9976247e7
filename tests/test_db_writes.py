"""The hottest writes (the audit log's row, a tag's value, an alias) go through `db.insert` and
`db.update`, SQL written once instead of the ORM's per call: what they store must read back as
the ORM would have stored it, on SQLite and on PostgreSQL."""

from datetime import timedelta

import pytest
from django.utils import timezone

from registry import audit, db, services
from registry.models import Alias, AuditEvent, ModelTag, VersionTag


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


def test_insert_asks_for_every_field_so_no_default_is_silently_left_out(world):
    with pytest.raises(AssertionError, match="created_at"):
        db.insert(AuditEvent, actor=world.alice, actor_name="alice", action="x", object_type="t", object_name="n",
                  model=None, before=None, after=None, remote_addr=None)
    with pytest.raises(AssertionError, match="value"):
        db.insert(ModelTag, model=world.iris, key="k")
