"""Services: version numbering, aliases, the audit trail, rename and delete."""

import pytest
from django.db import transaction

from registry import selectors, services
from registry.errors import AlreadyExists, Forbidden, InvalidInput, NotFound
from registry.models import Alias, AuditEvent, ModelTag, ModelVersion, RegisteredModel
from tests.conftest import SIGNATURE


def new_version(world, model=None, actor=None):
    return services.version_create(
        actor=actor or world.alice, model=model or world.iris, signature=SIGNATURE, status=ModelVersion.READY
    )


def numbers(model):
    return list(ModelVersion.objects.filter(model=model).order_by("version").values_list("version", flat=True))


# --- Version numbers ---------------------------------------------------------------------------
def test_it_numbers_versions_from_one_per_model(world):
    assert numbers(world.iris) == [1, 2]
    assert numbers(world.fraud) == [1]
    assert new_version(world, world.churn, world.admin).version == 1


def test_it_never_reuses_a_deleted_versions_number(world):
    v3 = new_version(world)
    services.version_delete(actor=world.alice, version=v3)
    assert new_version(world).version == 4
    services.version_delete(actor=world.alice, version=ModelVersion.objects.get(model=world.iris, version=4))
    services.version_delete(actor=world.alice, version=world.v2)
    services.version_delete(actor=world.alice, version=world.v1)
    assert numbers(world.iris) == []
    assert new_version(world).version == 5
    assert RegisteredModel.objects.get(pk=world.iris.pk).last_version == 5


def test_it_answers_not_found_for_a_model_deleted_after_it_was_read(world):
    """The view reads the model (with alice's privileges on it), someone deletes it, then the
    create allocates a number: a 404, nothing made (the allocation finds no row to lock)."""
    model = selectors.registry_model_get(world.alice, world.iris.full_name)
    RegisteredModel.objects.filter(pk=model.pk).delete()
    with pytest.raises(NotFound), transaction.atomic():  # as the request's own transaction would
        new_version(world, model)
    assert not ModelVersion.objects.filter(model_id=model.pk).exists()
    assert not AuditEvent.objects.filter(action="create", object_type="model_version", model_id=model.pk).exists()


def test_it_deletes_a_versions_aliases_with_it(world):
    services.version_delete(actor=world.alice, version=world.v2)
    assert not Alias.objects.filter(model=world.iris).exists()


# --- Aliases -------------------------------------------------------------------------------------
def test_it_moves_an_alias_in_place(world):
    row = Alias.objects.get(model=world.iris)
    services.alias_set(actor=world.alice, model=world.iris, alias="Champion", version=1)
    assert list(Alias.objects.filter(model=world.iris).values_list("pk", "name", "version__version")) == [
        (row.pk, "Champion", 1)
    ]


def test_it_treats_alias_names_case_insensitively(world):
    services.alias_set(actor=world.alice, model=world.iris, alias="CHAMPION", version=1)
    assert list(Alias.objects.filter(model=world.iris).values_list("name", "version__version")) == [("CHAMPION", 1)]
    services.alias_delete(actor=world.alice, model=world.iris, alias="champion")
    assert not Alias.objects.filter(model=world.iris).exists()


def test_every_lookup_by_alias_name_finds_the_alias_the_unique_constraint_would(world):
    """'ſ' (long s) upper-cases to 'S' but lower-cases to itself: the constraint (LOWER) lets
    's' and 'ſ' be two aliases, so every read and write must tell them apart as it does."""
    services.alias_set(actor=world.alice, model=world.iris, alias="s", version=2)
    services.alias_set(actor=world.alice, model=world.iris, alias="ſ", version=1)
    assert Alias.objects.filter(model=world.iris).count() == 3  # Champion, s, ſ
    for name, number in (("s", 2), ("S", 2), ("ſ", 1), ("champion", 2)):
        assert selectors.model_version_by_alias(world.iris, name).version == number, name
        assert selectors.version_by_alias(world.alice, world.iris.full_name, name).version == number, name
        assert selectors.registry_version_row(world.alice, world.iris.full_name, alias=name)["version"] == number, name
        _, versions = selectors.search(world.alice, alias=name)
        assert [v.version for v in versions] == [number], name
    services.alias_set(actor=world.alice, model=world.iris, alias="S", version=1)  # moves 's' only
    assert dict(Alias.objects.filter(model=world.iris).values_list("name", "version__version")) == {
        "Champion": 2, "S": 1, "ſ": 1}
    services.alias_delete(actor=world.alice, model=world.iris, alias="ſ")
    assert sorted(Alias.objects.filter(model=world.iris).values_list("name", flat=True)) == ["Champion", "S"]


def test_it_refuses_an_alias_to_a_missing_version_and_keeps_the_old_target(world):
    for number in (3, 99, "7"):
        with pytest.raises(NotFound, match="version="):
            services.alias_set(actor=world.alice, model=world.iris, alias="Champion", version=number)
    assert Alias.objects.get(model=world.iris).version == world.v2


def test_it_keeps_aliases_per_model(world):
    services.alias_set(actor=world.gina, model=world.fraud, alias="Champion", version=1)
    assert Alias.objects.filter(name="Champion").count() == 2
    assert Alias.objects.get(model=world.iris).version == world.v2


def test_it_deletes_a_missing_alias_as_a_no_op(world):
    before = AuditEvent.objects.count()
    services.alias_delete(actor=world.alice, model=world.iris, alias="Nope")
    assert AuditEvent.objects.count() == before


# --- The audit trail -------------------------------------------------------------------------------
def _changes(w):
    """(description, call, expected (actor, action, object_type, object_name, before, after)),
    run in this order: each sees the state the ones before it left."""
    return [
        ("model create", lambda: services.model_create(actor=w.cody, schema=w.ml_team, name="new", description="d"),
         ("cody", "create", "registered_model", "prod.ml_team.new", None, {"description": "d", "tags": {}})),
        ("model description", lambda: services.model_update(actor=w.alice, model=w.iris, description="new"),
         ("alice", "update_description", "registered_model", "prod.ml_team.iris",
          {"description": "Iris *classifier*"}, {"description": "new"})),
        ("version description", lambda: services.version_update(actor=w.alice, version=w.v1, description="v"),
         ("alice", "update_description", "model_version", "prod.ml_team.iris/1", {"description": ""}, {"description": "v"})),
        ("model tag set", lambda: services.model_tag_set(actor=w.tom, model=w.iris, key="task", value="other"),
         ("tom", "set_tag", "registered_model", "prod.ml_team.iris", {"task": "classification"}, {"task": "other"})),
        ("model tag add", lambda: services.model_tag_set(actor=w.tom, model=w.iris, key="new", value="1"),
         ("tom", "set_tag", "registered_model", "prod.ml_team.iris", None, {"new": "1"})),
        ("model tag delete", lambda: services.model_tag_delete(actor=w.alice, model=w.iris, key="task"),
         ("alice", "delete_tag", "registered_model", "prod.ml_team.iris", {"task": "other"}, None)),
        ("version tag", lambda: services.version_tag_set(actor=w.alice, version=w.v2, key="k", value="v"),
         ("alice", "set_tag", "model_version", "prod.ml_team.iris/2", None, {"k": "v"})),
        ("alias move", lambda: services.alias_set(actor=w.alice, model=w.iris, alias="Champion", version=1),
         ("alice", "set_alias", "registered_model", "prod.ml_team.iris",
          {"alias": "Champion", "version": 2}, {"alias": "Champion", "version": 1})),
        ("alias new", lambda: services.alias_set(actor=w.alice, model=w.iris, alias="Challenger", version=1),
         ("alice", "set_alias", "registered_model", "prod.ml_team.iris", None, {"alias": "Challenger", "version": 1})),
        ("alias delete", lambda: services.alias_delete(actor=w.alice, model=w.iris, alias="Champion"),
         ("alice", "delete_alias", "registered_model", "prod.ml_team.iris", {"alias": "Champion", "version": 1}, None)),
        ("grant", lambda: services.grants_change(actor=w.alice, obj=w.iris, changes=[{"principal": "oscar", "add": ["execute"]}]),
         ("alice", "grant", "registered_model", "prod.ml_team.iris", None,
          {"principal": "oscar", "add": ["EXECUTE"], "remove": []})),
        ("owner", lambda: services.owner_transfer(actor=w.alice, obj=w.iris, principal="ml-admins"),
         ("alice", "transfer_owner", "registered_model", "prod.ml_team.iris", {"owner": "alice"}, {"owner": "ml-admins"})),
        ("schema description", lambda: services.schema_update(actor=w.admin, schema=w.ml_team, description="s"),
         ("admin", "update_description", "schema", "prod.ml_team", {"description": ""}, {"description": "s"})),
        ("catalog create", lambda: services.catalog_create(actor=w.admin, name="dev"),
         ("admin", "create", "catalog", "dev", None, {"description": "", "owner": "admin"})),
        # After the transfer, gina owns iris through ml-admins (which holds CREATE MODEL).
        ("rename", lambda: services.model_rename(actor=w.gina, model=w.iris, new_name="iris2"),
         ("gina", "rename", "registered_model", "prod.ml_team.iris2",
          {"name": "prod.ml_team.iris"}, {"name": "prod.ml_team.iris2"})),
    ]


def test_it_writes_one_audit_event_per_change(world):
    for label, call, expected in _changes(world):
        last = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
        call()
        events = list(AuditEvent.objects.filter(id__gt=last))
        assert len(events) == 1, label
        e = events[0]
        assert (e.actor_name, e.action, e.object_type, e.object_name, e.before, e.after) == expected, label
        assert e.actor.username == expected[0], label
        if e.object_type in ("registered_model", "model_version") and label != "model create":
            assert e.model_id == world.iris.pk, label


def test_it_writes_audit_events_for_version_create_and_delete(world):
    last = AuditEvent.objects.order_by("-id").first().id
    v3 = new_version(world)
    services.version_delete(actor=world.alice, version=v3)
    events = list(AuditEvent.objects.filter(id__gt=last).order_by("id").values_list("actor_name", "action", "object_name"))
    assert events == [("alice", "create", "prod.ml_team.iris/3"), ("alice", "delete", "prod.ml_team.iris/3")]


def test_it_keeps_the_audit_trail_of_a_deleted_model(world):
    services.model_delete(actor=world.alice, model=world.iris)
    events = AuditEvent.objects.filter(object_name__startswith="prod.ml_team.iris")
    assert events.filter(action="delete", object_type="registered_model", before__versions=2).count() == 1
    assert events.filter(action="create").count() >= 3  # the model and its two versions


@pytest.mark.parametrize("label,call,error", [
    ("forbidden", lambda w: services.model_tag_set(actor=w.eve, model=w.iris, key="k", value="v"), Forbidden),
    ("hidden", lambda w: services.model_delete(actor=w.oscar, model=w.iris), NotFound),
    ("missing version", lambda w: services.alias_set(actor=w.alice, model=w.iris, alias="Champion", version=9), NotFound),
    ("bad alias", lambda w: services.alias_set(actor=w.alice, model=w.iris, alias="latest", version=1), InvalidInput),
    ("duplicate model", lambda w: services.model_create(actor=w.alice, schema=w.ml_team, name="fraud"), AlreadyExists),
    ("rename onto another", lambda w: services.model_rename(actor=w.alice, model=w.iris, new_name="fraud"), AlreadyExists),
    ("rename across schemas", lambda w: services.model_rename(actor=w.alice, model=w.iris, new_name="staging.ml_team.iris"), InvalidInput),
    ("bad grant", lambda w: services.grants_change(actor=w.alice, obj=w.iris, changes=[{"principal": "eve", "add": ["USE CATALOG"]}]), InvalidInput),
    ("unknown principal", lambda w: services.grants_change(actor=w.alice, obj=w.iris, changes=[{"principal": "nobody", "add": ["EXECUTE"]}]), InvalidInput),
    ("half-bad grant list", lambda w: services.grants_change(actor=w.alice, obj=w.iris, changes=[
        {"principal": "oscar", "add": ["EXECUTE"]}, {"principal": "eve", "add": ["BOGUS"]}]), InvalidInput),
    ("catalog by non-admin", lambda w: services.catalog_create(actor=w.alice, name="mine"), Forbidden),
    ("non-empty schema", lambda w: services.schema_delete(actor=w.admin, schema=w.ml_team), InvalidInput),
    ("non-empty catalog", lambda w: services.catalog_delete(actor=w.admin, catalog=w.prod), InvalidInput),
    ("too long description", lambda w: services.model_update(actor=w.alice, model=w.iris, description="x" * 100_001), InvalidInput),
])
def test_it_writes_no_audit_event_when_a_change_fails(world, label, call, error):
    before = AuditEvent.objects.count()
    grants = world.iris.user_grants.count()
    with pytest.raises(error):
        call(world)
    assert AuditEvent.objects.count() == before
    assert world.iris.user_grants.count() == grants
    assert RegisteredModel.objects.filter(full_name="prod.ml_team.iris").exists()


# --- Rename and delete -------------------------------------------------------------------------------
def test_it_renames_keeping_versions_aliases_tags_and_grants(world):
    services.model_rename(actor=world.alice, model=world.iris, new_name="flowers")
    renamed = selectors.model_get(world.eve, "prod.ml_team.flowers")  # eve's grant followed the model
    assert renamed.pk == world.iris.pk and renamed.name == "flowers"
    assert numbers(renamed) == [1, 2]
    assert Alias.objects.get(model=renamed).version == world.v2
    assert list(ModelTag.objects.filter(model=renamed).values_list("key", flat=True)) == ["task"]
    with pytest.raises(NotFound):
        selectors.model_get(world.alice, "prod.ml_team.iris")
    with pytest.raises(NotFound):
        selectors.version_get(world.alice, "prod.ml_team.iris", 1)
    assert selectors.version_get(world.alice, "prod.ml_team.flowers", 2).pk == world.v2.pk
    # Numbering goes on where it was.
    assert new_version(world, renamed).version == 3


def test_it_frees_the_old_name_on_rename(world):
    services.model_rename(actor=world.alice, model=world.iris, new_name="prod.ml_team.flowers")
    again = services.model_create(actor=world.alice, schema=world.ml_team, name="iris")
    assert again.pk != world.iris.pk
    assert numbers(again) == []
    assert new_version(world, again).version == 1
    # The reader of the old model is not a reader of the new one.
    with pytest.raises(NotFound):
        selectors.model_get(world.eve, "prod.ml_team.iris")
    assert selectors.model_get(world.eve, "prod.ml_team.flowers").pk == world.iris.pk


def test_it_renames_to_the_same_name_as_a_no_op(world):
    before = AuditEvent.objects.count()
    services.model_rename(actor=world.alice, model=world.iris, new_name="IRIS")
    assert AuditEvent.objects.count() == before


def test_it_frees_the_name_at_once_on_delete(world):
    services.model_delete(actor=world.alice, model=world.iris)
    assert not RegisteredModel.objects.filter(full_name="prod.ml_team.iris").exists()
    assert not ModelVersion.objects.filter(pk__in=[world.v1.pk, world.v2.pk]).exists()
    with pytest.raises(NotFound):
        selectors.model_get(world.admin, "prod.ml_team.iris")
    again = services.model_create(actor=world.cody, schema=world.ml_team, name="iris")
    assert again.owner == world.cody
    assert new_version(world, again, world.cody).version == 1
    # Grants and aliases of the deleted model are gone with it, not inherited by the new one.
    with pytest.raises(NotFound):
        selectors.model_get(world.eve, "prod.ml_team.iris")
    assert not Alias.objects.filter(model=again).exists()
    with pytest.raises(NotFound):
        selectors.model_get(world.alice, "prod.ml_team.iris")


# --- Unity Catalog's PATCH: several changes, all or nothing -----------------------------------
def test_a_securable_update_is_all_or_nothing(world):
    before = (world.iris.description, world.iris.full_name, world.iris.owner_name, AuditEvent.objects.count())
    with pytest.raises((InvalidInput, NotFound)):
        services.securable_update(actor=world.alice, obj=world.iris, description="changed", new_name="iris_two",
                                  owner="no-such-principal")
    iris = RegisteredModel.objects.get(pk=world.iris.pk)
    assert (iris.description, iris.full_name, iris.owner_name, AuditEvent.objects.count()) == before

    services.securable_update(actor=world.alice, obj=iris, description="changed", new_name="iris_two")  # read again,
    iris = RegisteredModel.objects.get(pk=world.iris.pk)  # as a request would: the failed one left its object changed
    assert (iris.description, iris.full_name) == ("changed", "prod.ml_team.iris_two")


def test_a_catalog_or_schema_keeps_its_name(world):
    for obj in (world.prod, world.ml_team):
        with pytest.raises(InvalidInput, match="cannot be renamed"):
            services.securable_update(actor=world.admin, obj=obj, description="x", new_name="other")
        assert type(obj).objects.get(pk=obj.pk).description != "x"
        services.securable_update(actor=world.admin, obj=obj, description="x", new_name=obj.name)  # its own name
        assert type(obj).objects.get(pk=obj.pk).description == "x"
