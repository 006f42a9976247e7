"""The shared world is what the persona tables in other modules assume."""

from registry import selectors


def test_it_shows_each_persona_what_the_grants_say(world):
    seen = {u: sorted(m.full_name for m in selectors.models(getattr(world, u)))
            for u in ("admin", "alice", "gina", "eve", "tom", "cody", "uma", "oscar")}
    assert seen["admin"] == ["prod.ml_team.fraud", "prod.ml_team.iris", "staging.ml_team.churn"]
    assert seen["alice"] == ["prod.ml_team.iris"]
    assert seen["gina"] == ["prod.ml_team.fraud"]
    assert seen["eve"] == ["prod.ml_team.iris"]
    assert seen["tom"] == ["prod.ml_team.fraud", "prod.ml_team.iris"]
    assert seen["cody"] == []
    assert seen["uma"] == []
    assert seen["oscar"] == []
    assert [c.name for c in selectors.catalogs(world.uma)] == ["prod"]
    assert list(selectors.schemas(world.uma)) == []
