"""Permission queries are prepared on PostgreSQL (registry/db.py): the plan is reused, never a
result. A revoked grant counts at the very next request on the same connection, after the
statement has switched to its generic plan."""

import pytest

from registry import selectors, services
from registry.errors import NotFound
from registry.models import RegisteredModel, Schema


def _names(qs):
    return {m.full_name for m in qs}


def test_a_revoked_grant_counts_at_once_with_a_reused_plan(world):
    for _ in range(8):  # past psycopg's preparation and PostgreSQL's five custom plans
        assert selectors.model_get(world.eve, "prod.ml_team.iris").cap_execute
        assert "prod.ml_team.iris" in _names(selectors.models(world.eve))
    services.grants_change(actor=world.alice, obj=world.iris, changes=[{"principal": "eve", "remove": ["EXECUTE"]}])
    with pytest.raises(NotFound):
        selectors.model_get(world.eve, "prod.ml_team.iris")
    assert "prod.ml_team.iris" not in _names(selectors.models(world.eve))
    assert not selectors.registry_versions(world.eve).filter(model=world.iris).exists()


def test_a_new_grant_counts_at_once_with_a_reused_plan(world):
    other = RegisteredModel.objects.filter(schema=Schema.objects.get(name="ml_team", catalog__name="prod")).exclude(
        pk=world.iris.pk
    ).first()
    for _ in range(8):
        assert other.full_name not in _names(selectors.models(world.eve))
    services.grants_change(actor=world.admin, obj=other, changes=[{"principal": "eve", "add": ["EXECUTE"]}])
    assert other.full_name in _names(selectors.models(world.eve))
    assert selectors.model_get(world.eve, other.full_name).cap_execute
