"""Privilege decisions as one table: persona × object × action → allowed, 403 or 404.

`permissions.require` raises NotFound when the object is invisible to the persona (names do not
leak), Forbidden naming the missing privilege when it is visible but not allowed; `can` is its
boolean. Every entry of `permissions.ACTIONS` appears below; a new action fails
`test_it_covers_every_action` until it gets a row.
"""

import pytest

from registry import permissions, services
from registry.errors import Forbidden, NotFound
from registry.models import Catalog, ModelVersion, RegisteredModel, Schema

OK, NO, HIDDEN = "ok", "403", "404"
PERSONAS = ("admin", "alice", "gina", "eve", "tom", "cody", "uma", "oscar")

CATALOG_ACTIONS = ["catalog.read", "catalog.create_schema", "catalog.edit", "catalog.delete", "catalog.manage"]
SCHEMA_ACTIONS = ["schema.read", "schema.create_model", "schema.edit", "schema.delete", "schema.manage"]
MODEL_ACTIONS = [
    "model.read", "model.create_version", "model.alias", "model.tag", "model.edit",
    "model.rename", "model.delete", "model.manage", "model.copy_into",
]


def row(*outcomes):
    return list(outcomes)


ALL_OK_C, ALL_OK_S, ALL_OK_M = [OK] * 5, [OK] * 5, [OK] * 9
HIDDEN_C, HIDDEN_S, HIDDEN_M = [HIDDEN] * 5, [HIDDEN] * 5, [HIDDEN] * 9
READ_ONLY_C, READ_ONLY_S = row(OK, NO, NO, NO, NO), row(OK, NO, NO, NO, NO)
CREATOR_S = row(OK, OK, NO, NO, NO)
READER_M = row(OK, NO, NO, NO, NO, NO, NO, NO, NO)
TAGGER_M = row(OK, NO, NO, OK, NO, NO, NO, NO, NO)

# object attribute on the world → (actions, {persona: outcomes})
EXPECTED = {
    # prod is owned by admin; everyone but oscar holds USE CATALOG on it (ml-admins for gina).
    "prod": (CATALOG_ACTIONS, {
        "admin": ALL_OK_C, "alice": READ_ONLY_C, "gina": READ_ONLY_C, "eve": READ_ONLY_C,
        "tom": READ_ONLY_C, "cody": READ_ONLY_C, "uma": READ_ONLY_C, "oscar": HIDDEN_C,
    }),
    # Nobody but the superuser holds anything in staging.
    "staging": (CATALOG_ACTIONS, {p: (ALL_OK_C if p == "admin" else HIDDEN_C) for p in PERSONAS}),
    # uma holds USE CATALOG but not USE SCHEMA: the schema does not exist for her.
    "ml_team": (SCHEMA_ACTIONS, {
        "admin": ALL_OK_S, "alice": CREATOR_S, "gina": CREATOR_S, "eve": READ_ONLY_S,
        "tom": READ_ONLY_S, "cody": CREATOR_S, "uma": HIDDEN_S, "oscar": HIDDEN_S,
    }),
    # iris: alice owns it (and holds CREATE MODEL, so she may rename); eve reads it;
    # tom reads and tags it through grants on the schema.
    "iris": (MODEL_ACTIONS, {
        "admin": ALL_OK_M, "alice": ALL_OK_M, "gina": HIDDEN_M, "eve": READER_M,
        "tom": TAGGER_M, "cody": HIDDEN_M, "uma": HIDDEN_M, "oscar": HIDDEN_M,
    }),
    # A version answers as its model does.
    "v1": (MODEL_ACTIONS, {
        "admin": ALL_OK_M, "alice": ALL_OK_M, "gina": HIDDEN_M, "eve": READER_M,
        "tom": TAGGER_M, "cody": HIDDEN_M, "uma": HIDDEN_M, "oscar": HIDDEN_M,
    }),
    # fraud is owned by the group ml-admins: gina, a member, is an owner.
    "fraud": (MODEL_ACTIONS, {
        "admin": ALL_OK_M, "alice": HIDDEN_M, "gina": ALL_OK_M, "eve": HIDDEN_M,
        "tom": TAGGER_M, "cody": HIDDEN_M, "uma": HIDDEN_M, "oscar": HIDDEN_M,
    }),
    "churn": (MODEL_ACTIONS, {p: (ALL_OK_M if p == "admin" else HIDDEN_M) for p in PERSONAS}),
}

def outcome(user, action, obj):
    try:
        permissions.require(user, action, obj)
    except NotFound:
        return HIDDEN
    except Forbidden:
        return NO
    return OK


def test_it_covers_every_action():
    registry_actions = [a for a in permissions.ACTIONS if not a.startswith("experiment.")]  # test_experiment_grants.py
    assert sorted(CATALOG_ACTIONS + SCHEMA_ACTIONS + MODEL_ACTIONS) == sorted(registry_actions)
    for actions, table in EXPECTED.values():
        assert sorted(table) == sorted(PERSONAS)
        assert all(len(outcomes) == len(actions) for outcomes in table.values())


@pytest.mark.parametrize("obj", list(EXPECTED))
def test_it_decides_as_the_table_says(world, obj):
    """One world per object; the whole persona × action table compared at once, so a failure
    shows every cell that differs."""
    actions, expected = EXPECTED[obj]
    target = getattr(world, obj)
    actual = {p: [outcome(getattr(world, p), a, target) for a in actions] for p in PERSONAS}
    assert actual == expected
    for persona in PERSONAS:
        for action, decided in zip(actions, expected[persona], strict=True):
            assert permissions.can(getattr(world, persona), action, target) is (decided == OK), (persona, action)


def test_it_agrees_between_one_object_and_the_list(world):
    """The filter behind list pages and the per-object decision are the same rule."""
    assert_lists_agree(world)


# Grants and ownerships reaching models in every way the list filter starts from (the user's
# rights listed from owners and grants, not the per-object rule): after each, lists still agree.
LIST_SCENARIOS = {
    "EXECUTE on a catalog": lambda w: services.grants_change(
        actor=w.admin, obj=w.prod, changes=[{"principal": "cody", "add": ["EXECUTE"]}]),
    "a group's EXECUTE on a schema": lambda w: services.grants_change(
        actor=w.admin, obj=w.ml_team, changes=[{"principal": "ml-admins", "add": ["EXECUTE"]}]),
    "EXECUTE and USE CATALOG without USE SCHEMA": lambda w: (
        services.grants_change(actor=w.alice, obj=w.iris, changes=[{"principal": "oscar", "add": ["EXECUTE"]}]),
        services.grants_change(actor=w.admin, obj=w.prod, changes=[{"principal": "oscar", "add": ["USE CATALOG"]}])),
    "a group's USE SCHEMA on a catalog": lambda w: services.grants_change(
        actor=w.admin, obj=w.staging, changes=[{"principal": "ml-admins", "add": ["USE SCHEMA", "EXECUTE"]}]),
    "ALL PRIVILEGES on a catalog": lambda w: services.grants_change(
        actor=w.admin, obj=w.prod, changes=[{"principal": "oscar", "add": ["ALL PRIVILEGES"]}]),
    "a catalog owned by a group": lambda w: services.owner_transfer(actor=w.admin, obj=w.staging, principal="ml-admins"),
    "a schema owned by a user": lambda w: services.owner_transfer(actor=w.admin, obj=w.ml_team, principal="cody"),
    "a model owned by a group": lambda w: services.owner_transfer(actor=w.admin, obj=w.churn, principal="ml-admins"),
    "a group owner leaving the group": lambda w: w.gina.groups.remove(w.ml_admins),
    "a revoked grant": lambda w: services.grants_change(
        actor=w.alice, obj=w.iris, changes=[{"principal": "eve", "remove": ["EXECUTE"]}]),
}


@pytest.mark.parametrize("scenario", LIST_SCENARIOS)
def test_it_agrees_between_one_object_and_the_list_after_grants(world, scenario):
    LIST_SCENARIOS[scenario](world)
    assert_lists_agree(world)


def assert_lists_agree(world):
    """Three forms of one rule agree: the per-object decision (`can`), the filter of lists and
    reads (rows tested against the user's rights listed in front of the statement, `visible`)
    and the rule as one `Q` tested row by row (`q_visible`: the conjunction of `q_holds` for
    each privilege visibility needs); and each capability read from those lists agrees with
    the privilege's own `Q` (`q_holds`)."""
    for persona in PERSONAS:
        user = getattr(world, persona)
        for cls, action in ((RegisteredModel, "model.read"), (Schema, "schema.read"), (Catalog, "catalog.read"),
                            (ModelVersion, "model.read")):
            rows = list(permissions.visible(user, cls.objects.all()))
            listed = set(rows)
            assert len(rows) == len(listed), (persona, cls)  # each row once, however many ways it is held
            for obj in cls.objects.all():
                assert (obj in listed) is permissions.can(user, action, obj), (persona, obj)
            assert set(cls.objects.filter(permissions.q_visible(user, cls))) == listed, (persona, cls)
            # Capabilities (read from the same rights lists) against the rule as one Q per privilege.
            annotated = permissions.with_capabilities(user, cls.objects.all())
            for privilege in permissions.CAPABILITIES[cls]:
                field = "cap_" + privilege.lower().replace(" ", "_")
                assert {obj for obj in annotated if getattr(obj, field)} == set(
                    cls.objects.filter(permissions.q_holds(user, privilege, cls))), (persona, cls, privilege)
                # The lists a form offers (models to copy into, schemas to create a model in).
                assert set(permissions.filter_holding(user, cls.objects.all(), privilege)) == listed & set(
                    cls.objects.filter(permissions.q_holds(user, privilege, cls))), (persona, cls, privilege)


def test_it_names_the_missing_privilege_in_a_403(world):
    with pytest.raises(Forbidden) as info:
        permissions.require(world.eve, "model.tag", world.iris)
    assert info.value.missing == ("APPLY TAG",)
    assert "APPLY TAG" in info.value.message and "prod.ml_team.iris" in info.value.message

    with pytest.raises(Forbidden) as info:
        permissions.require(world.tom, "model.rename", world.iris)
    assert info.value.missing == ("OWNER", "CREATE MODEL")
    assert "ownership" in info.value.message

    with pytest.raises(Forbidden) as info:
        permissions.require(world.alice, "catalog.create_schema", world.prod)
    assert "CREATE SCHEMA" in info.value.message


def test_it_says_not_found_without_leaking_more_than_the_name_asked_for(world):
    with pytest.raises(NotFound) as info:
        permissions.require(world.oscar, "model.delete", world.iris)
    assert info.value.message == "Registered Model with name=prod.ml_team.iris not found"


def test_it_lets_an_owner_rename_only_with_create_model_on_the_schema(world):
    services.grants_change(actor=world.admin, obj=world.ml_team, changes=[{"principal": "alice", "remove": ["CREATE MODEL"]}])
    with pytest.raises(Forbidden) as info:
        permissions.require(world.alice, "model.rename", world.iris)
    assert info.value.missing == ("CREATE MODEL",)
    assert permissions.can(world.alice, "model.delete", world.iris)


# --- Inheritance, ownership, ALL PRIVILEGES, revocation -------------------------------------
def test_it_inherits_execute_granted_on_the_catalog(world):
    assert outcome(world.cody, "model.read", world.iris) == HIDDEN
    services.grants_change(actor=world.admin, obj=world.prod, changes=[{"principal": "cody", "add": ["EXECUTE"]}])
    for model in (world.iris, world.fraud, world.v1, world.fraud_v1):
        assert outcome(world.cody, "model.read", model) == OK
        assert outcome(world.cody, "model.tag", model) == NO
    # Only inside that catalog.
    assert outcome(world.cody, "model.read", world.churn) == HIDDEN


def test_it_inherits_a_group_grant_on_the_schema(world):
    services.grants_change(actor=world.admin, obj=world.ml_team, changes=[{"principal": "ml-admins", "add": ["EXECUTE"]}])
    assert outcome(world.gina, "model.read", world.iris) == OK
    assert outcome(world.gina, "model.delete", world.iris) == NO


def test_it_still_needs_use_catalog_and_use_schema_with_execute(world):
    # EXECUTE on the model alone is not enough: the catalog and schema must be usable too.
    services.grants_change(actor=world.alice, obj=world.iris, changes=[{"principal": "oscar", "add": ["EXECUTE"]}])
    assert outcome(world.oscar, "model.read", world.iris) == HIDDEN
    services.grants_change(actor=world.admin, obj=world.prod, changes=[{"principal": "oscar", "add": ["USE CATALOG"]}])
    assert outcome(world.oscar, "model.read", world.iris) == HIDDEN
    services.grants_change(actor=world.admin, obj=world.ml_team, changes=[{"principal": "oscar", "add": ["USE SCHEMA"]}])
    assert outcome(world.oscar, "model.read", world.iris) == OK


def test_it_gives_all_privileges_but_not_ownership(world):
    services.grants_change(actor=world.admin, obj=world.prod, changes=[{"principal": "oscar", "add": ["ALL PRIVILEGES"]}])
    assert outcome(world.oscar, "catalog.create_schema", world.prod) == OK
    assert outcome(world.oscar, "schema.create_model", world.ml_team) == OK
    assert outcome(world.oscar, "model.read", world.fraud) == OK
    assert outcome(world.oscar, "model.tag", world.fraud) == OK
    for action in ("model.create_version", "model.alias", "model.delete", "model.manage", "model.rename"):
        assert outcome(world.oscar, action, world.fraud) == NO, action
    assert outcome(world.oscar, "catalog.manage", world.prod) == NO
    assert outcome(world.oscar, "model.read", world.churn) == HIDDEN


def test_it_counts_ownership_of_a_catalog_for_everything_inside(world):
    services.owner_transfer(actor=world.admin, obj=world.staging, principal="ml-admins")
    for action in MODEL_ACTIONS:
        assert outcome(world.gina, action, world.churn) == OK, action
    assert outcome(world.gina, "schema.manage", world.staging_team) == OK
    assert outcome(world.gina, "catalog.manage", world.staging) == OK
    assert outcome(world.alice, "model.read", world.churn) == HIDDEN


def test_it_counts_ownership_of_a_schema_for_its_models(world):
    services.owner_transfer(actor=world.admin, obj=world.ml_team, principal="cody")
    assert outcome(world.cody, "model.delete", world.iris) == OK
    assert outcome(world.cody, "model.delete", world.fraud) == OK
    # Owning the schema does not make the catalog usable.
    assert outcome(world.cody, "catalog.manage", world.prod) == NO


def test_it_drops_a_group_owner_who_leaves_the_group(world):
    world.gina.groups.remove(world.ml_admins)
    assert outcome(world.gina, "model.read", world.fraud) == HIDDEN


def test_it_revokes_at_once(world):
    assert outcome(world.eve, "model.read", world.iris) == OK
    services.grants_change(actor=world.alice, obj=world.iris, changes=[{"principal": "eve", "remove": ["EXECUTE"]}])
    assert outcome(world.eve, "model.read", world.iris) == HIDDEN
    # Same instance, other privileges: an inherited grant revoked on the schema counts at once too.
    assert outcome(world.tom, "model.tag", world.iris) == OK
    services.grants_change(actor=world.admin, obj=world.ml_team, changes=[{"principal": "tom", "remove": ["APPLY TAG"]}])
    assert outcome(world.tom, "model.tag", world.iris) == NO
    services.grants_change(actor=world.admin, obj=world.prod, changes=[{"principal": "tom", "remove": ["USE CATALOG"]}])
    assert outcome(world.tom, "model.read", world.iris) == HIDDEN


def test_it_ignores_inactive_and_anonymous_users(world):
    from django.contrib.auth.models import AnonymousUser

    world.admin.is_active = False
    assert outcome(world.admin, "model.read", world.churn) == HIDDEN
    assert outcome(AnonymousUser(), "catalog.read", world.prod) == HIDDEN
    assert outcome(None, "catalog.read", world.prod) == HIDDEN


def test_it_never_answers_for_one_user_with_another_users_privileges(world):
    """Regression: `capabilities` kept the first caller's answer on the object, so the next
    user asking about the same instance got the owner's privileges (oscar could delete iris)."""
    from registry import selectors

    assert permissions.can(world.alice, "model.delete", world.iris)
    assert not permissions.can(world.oscar, "model.delete", world.iris)
    assert outcome(world.oscar, "model.read", world.iris) == HIDDEN
    # An object a selector annotated for alice answers for alice without a query, not for eve.
    annotated = selectors.model_get(world.alice, "prod.ml_team.iris")
    assert permissions.can(world.alice, "model.delete", annotated)
    assert outcome(world.eve, "model.delete", annotated) == NO
    assert outcome(world.oscar, "model.delete", annotated) == HIDDEN


def test_a_list_filtered_again_keeps_one_set_of_rights_and_only_for_the_same_user(world):
    """`visible` puts the user's rights in front of the statement: filtering a queryset built on
    another (versions of the models he sees, say) adds only the lists it lacks, and never uses
    one user's lists for another."""
    for persona in ("alice", "eve", "gina"):
        user = getattr(world, persona)
        models = permissions.visible(user, RegisteredModel.objects.all())
        assert set(permissions.visible(user, models.filter(name__contains="i"))) == {
            m for m in models if "i" in m.name}, persona
        catalogs = permissions.visible(user, Catalog.objects.all())
        assert set(permissions.visible(user, Schema.objects.filter(catalog__in=catalogs))) == set(
            permissions.visible(user, Schema.objects.all())), persona
        versions = permissions.visible(user, ModelVersion.objects.filter(model__in=models))
        assert set(permissions.visible(user, versions)) == set(permissions.visible(user, ModelVersion.objects.all()))
    alices = permissions.visible(world.alice, RegisteredModel.objects.all())
    assert world.iris in set(alices)
    with pytest.raises(AssertionError, match="another user"):
        permissions.visible(world.oscar, alices)


def test_it_denies_a_service_call_by_someone_else_on_an_object_the_owner_touched(world):
    from registry.models import AuditEvent

    services.model_tag_set(actor=world.alice, model=world.iris, key="a", value="1")
    before = AuditEvent.objects.count()
    with pytest.raises(NotFound):
        services.model_delete(actor=world.oscar, model=world.iris)
    with pytest.raises(Forbidden):
        services.model_delete(actor=world.eve, model=world.iris)
    assert RegisteredModel.objects.filter(pk=world.iris.pk).exists()
    assert AuditEvent.objects.count() == before
