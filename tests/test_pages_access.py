"""Who gets 200, 403 or 404 on each page (PRODUCT.md §3): invisible objects are 404 so names
do not leak; visible-but-not-allowed is 403 naming the privilege; buttons a user may not use
are not shown."""

import pytest
from django.urls import reverse

HOME = "/"
PROD = "/explore/prod/"
STAGING = "/explore/staging/"
ML_TEAM = "/explore/prod/ml_team/"
IRIS = "/explore/prod/ml_team/iris/"
FRAUD = "/explore/prod/ml_team/fraud/"
IRIS_V1 = "/explore/prod/ml_team/iris/versions/1/"
CHURN = "/explore/staging/ml_team/churn/"


def get(client, user, url):
    client.force_login(user)
    return client.get(url)


def test_it_redirects_anonymous_visitors_to_login(client, world):
    for url in (HOME, PROD, IRIS, IRIS_V1, "/search/?q=iris"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_it_logs_in_and_out(client, world):
    response = client.post(reverse("login"), {"username": "alice", "password": "alice-pass-123"})
    assert response.status_code == 302
    assert client.get(HOME).status_code == 200
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(HOME).status_code == 302


def test_it_shows_the_login_error_next_to_the_form(client, world):
    response = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


@pytest.mark.parametrize(
    "persona, url, status",
    [
        # catalogs: USE CATALOG
        ("admin", PROD, 200), ("alice", PROD, 200), ("uma", PROD, 200), ("oscar", PROD, 404),
        ("alice", STAGING, 404), ("admin", STAGING, 200),
        # schemas: + USE SCHEMA
        ("alice", ML_TEAM, 200), ("cody", ML_TEAM, 200), ("uma", ML_TEAM, 404), ("oscar", ML_TEAM, 404),
        # models: + EXECUTE (or ownership)
        ("alice", IRIS, 200), ("eve", IRIS, 200), ("tom", IRIS, 200), ("admin", IRIS, 200),
        ("gina", IRIS, 404), ("cody", IRIS, 404), ("uma", IRIS, 404), ("oscar", IRIS, 404),
        ("gina", FRAUD, 200), ("tom", FRAUD, 200), ("alice", FRAUD, 404), ("eve", FRAUD, 404),
        ("alice", CHURN, 404), ("admin", CHURN, 200),
        # versions: as their model
        ("alice", IRIS_V1, 200), ("eve", IRIS_V1, 200), ("oscar", IRIS_V1, 404), ("gina", IRIS_V1, 404),
        ("alice", "/explore/prod/ml_team/iris/versions/99/", 404),
        ("alice", "/explore/prod/ml_team/nope/", 404),
    ],
)
def test_it_answers_each_persona_as_the_privileges_say(client, world, persona, url, status):
    response = get(client, getattr(world, persona), url)
    assert response.status_code == status
    if status == 404:
        assert b"Not found" in response.content


@pytest.mark.parametrize("tab", ["overview", "permissions", "activity"])
def test_it_renders_every_model_tab(client, world, tab):
    response = get(client, world.alice, f"{IRIS}?tab={tab}")
    assert response.status_code == 200
    assert f'class="tab is-active"'.encode() in response.content


@pytest.mark.parametrize("tab", ["overview", "files", "lineage"])
def test_it_renders_every_version_tab(client, world, tab):
    assert get(client, world.eve, f"{IRIS_V1}?tab={tab}").status_code == 200


def test_it_lists_only_visible_catalogs_on_home_and_in_the_tree(client, world):
    body = get(client, world.alice, HOME).content.decode()
    assert ">prod<" in body and "staging" not in body
    body = get(client, world.oscar, HOME).content.decode()
    assert "prod" not in body and "USE CATALOG" in body  # empty state says what to ask for


def test_the_tree_shows_only_models_the_user_sees(client, world):
    body = get(client, world.eve, ML_TEAM).content.decode()
    assert ">iris<" in body and ">fraud<" not in body


@pytest.mark.parametrize("persona", ["admin", "alice", "gina", "eve", "tom", "cody", "uma", "oscar"])
def test_the_tree_lists_what_the_permission_filter_lets_each_user_see(client, world, persona):
    # The tree's compiled queries against `visible` assembled by Django for each persona (owners,
    # grantees, a group owner, nobody): the same catalogs, schemas and open schema's models.
    from registry import selectors

    user = getattr(world, persona)
    tree = selectors.catalog_tree(user, {"catalog": "prod", "schema": "ml_team"})
    assert [c["name"] for c, _ in tree] == [c.name for c in selectors.catalogs(user)]
    assert [(c["name"], s["name"]) for c, schemas in tree for s, _, _ in schemas] == [
        (s.catalog.name, s.name) for s in selectors.schemas(user)]
    opened = [models for c, schemas in tree for s, models, _ in schemas if models is not None]
    if ("prod", "ml_team") in [(s.catalog.name, s.name) for s in selectors.schemas(user)]:
        assert [m["name"] for m in opened[0]] == [m.name for m in selectors.models(user, world.ml_team)]
    else:
        assert opened == []


def test_the_schema_page_lists_models_with_version_counts(client, world):
    body = get(client, world.admin, ML_TEAM).content.decode()
    assert ">iris<" in body and ">fraud<" in body
    assert '<td class="num">2</td>' in body  # iris has two versions


def test_the_catalog_page_lists_schemas_with_model_counts(client, world):
    body = get(client, world.admin, PROD).content.decode()
    assert ">ml_team<" in body and '<td class="num">2</td>' in body
    assert "Production models" in body


def test_the_catalog_page_counts_only_the_models_the_user_sees(client, world):
    # ml_team holds iris and fraud: eve sees iris only, cody neither; a count of 2 would tell
    # them that models hidden from them exist.
    for persona, count in (("eve", 1), ("cody", 0), ("tom", 2)):
        body = get(client, getattr(world, persona), PROD).content.decode()
        assert ">ml_team<" in body and f'<td class="num">{count}</td>' in body, persona


def test_only_superusers_see_the_create_catalog_form(client, world):
    assert b"Create catalog" in get(client, world.admin, HOME).content
    assert b"Create catalog" not in get(client, world.alice, HOME).content


def test_create_schema_form_only_with_create_schema(client, world):
    assert b"Create schema" in get(client, world.admin, PROD).content
    assert b"Create schema" not in get(client, world.alice, PROD).content


def test_create_model_form_only_with_create_model(client, world):
    assert b"Create model" in get(client, world.cody, ML_TEAM).content
    assert b"Create model" not in get(client, world.tom, ML_TEAM).content


def test_a_reader_sees_no_edit_buttons(client, world):
    body = get(client, world.eve, IRIS).content.decode()
    assert "Iris <em>classifier</em>" in body
    for hidden in ("+ set alias", "+ add tag", "✎</span> Edit", "Rename", "Delete model", 'name="confirm_name"'):
        assert hidden not in body, hidden
    assert "9 of 10 left" in body  # the limit is shown even to readers


def test_a_tagger_sees_the_tag_form_but_not_the_description_editor(client, world):
    body = get(client, world.tom, IRIS).content.decode()
    assert "+ add tag" in body
    assert "✎</span> Edit" not in body and "+ set alias" not in body


def test_the_owner_sees_every_action(client, world):
    body = get(client, world.alice, IRIS).content.decode()
    for shown in ("+ set alias", "9 of 10 left", "+ add tag", "✎</span> Edit", "Rename", "Delete model"):
        assert shown in body, shown
    assert "Delete model prod.ml_team.iris and its 2 versions and all their files? This cannot be undone." in body


def test_the_group_owner_sees_edit_actions_on_its_model(client, world):
    body = get(client, world.gina, FRAUD).content.decode()
    assert "✎</span> Edit" in body and "+ set alias" in body


def test_the_versions_table_shows_status_aliases_creator_and_run(client, world):
    from registry import services
    from registry.models import ModelVersion

    services.version_set_status(version=world.v1, status=ModelVersion.FAILED, message="MLmodel has no signature")
    champion = world.iris.aliases.get(name="Champion").version
    services.alias_set(actor=world.alice, model=world.iris, alias="Alpha", version=str(champion.version))
    body = get(client, world.alice, IRIS).content.decode()
    assert "badge-ready" in body and "badge-failed" in body
    assert "MLmodel has no signature" in body
    assert "@Champion" in body and "run def" in body and ">alice<" in body
    assert body.index("@Alpha") < body.index("@Champion")  # a version's aliases, by name
    created = champion.created_at  # in UTC, the current time zone here
    assert f'<time datetime="{created.isoformat()}">{created:%Y-%m-%d %H:%M}</time>' in body
    body = get(client, world.alice, "/search/?q=iris").content.decode()  # the search's versions table
    assert body.index("@Alpha") < body.index("@Champion")
    assert f'<time datetime="{created.isoformat()}">{created:%Y-%m-%d %H:%M}</time>' in body


def test_the_permissions_tab_shows_direct_and_inherited_grants(client, world):
    body = get(client, world.alice, f"{IRIS}?tab=permissions").content.decode()
    assert ">eve<" in body and "EXECUTE" in body
    assert "schema prod.ml_team" in body and "catalog prod" in body  # inherited-from
    assert "Grant a privilege" in body and "Transfer ownership" in body
    body = get(client, world.eve, f"{IRIS}?tab=permissions").content.decode()
    assert ">eve<" in body and "Grant a privilege" not in body and "Revoke" not in body


def test_the_activity_tab_lists_audit_events_newest_first(client, world):
    body = get(client, world.eve, f"{IRIS}?tab=activity").content.decode()
    assert body.index("set tag") < body.index("set alias") < body.index("create")


def test_the_version_page_shows_breadcrumb_signature_and_aliases(client, world):
    body = get(client, world.eve, "/explore/prod/ml_team/iris/versions/2/").content.decode()
    assert 'aria-current="page">Version 2<' in body
    assert "sepal_length" in body and "double" in body and "long" in body
    assert "@Champion" in body and "runs:/def/model" in body
    assert "Delete version" not in body  # eve is a reader


def test_search_finds_only_visible_models_and_versions(client, world):
    body = get(client, world.eve, "/search/?q=ml_team").content.decode()
    assert "prod.ml_team.iris" in body
    assert "prod.ml_team.fraud" not in body and "staging.ml_team.churn" not in body
    body = get(client, world.admin, "/search/?q=ml_team").content.decode()
    assert "prod.ml_team.fraud" in body and "staging.ml_team.churn" in body


def test_search_facets_sort_and_paginate_from_the_url(client, world):
    body = get(client, world.admin, "/search/?alias=Champion").content.decode()
    assert "Version 2" in body and "Version 1" not in body
    body = get(client, world.admin, "/search/?tag=task%3Dclassification").content.decode()
    assert "prod.ml_team.iris" in body and "prod.ml_team.fraud" not in body
    body = get(client, world.admin, "/search/?creator=gina&status=READY").content.decode()
    assert "prod.ml_team.fraud" in body and "prod.ml_team.iris" not in body.split('id="versions"')[1]
    asc = get(client, world.admin, "/search/?msort=name").content.decode()
    desc = get(client, world.admin, "/search/?msort=-name").content.decode()
    assert asc.index("prod.ml_team.fraud") < asc.index("staging.ml_team.churn")
    assert desc.index("staging.ml_team.churn") < desc.index("prod.ml_team.fraud")
    assert get(client, world.admin, "/search/?mpage=999&vsort=bogus").status_code == 200


def test_unknown_urls_get_the_404_page(client, world):
    response = get(client, world.alice, "/no/such/page/")
    assert response.status_code == 404
    assert b"Not found" in response.content


def test_search_facets_by_catalog_and_schema(client, world):
    body = get(client, world.admin, "/search/?catalog=staging").content.decode()
    assert "staging.ml_team.churn" in body and "prod.ml_team.iris" not in body
    body = get(client, world.admin, "/search/?catalog=prod&schema=ml_team").content.decode()
    assert "prod.ml_team.iris" in body and "staging.ml_team.churn" not in body
    # a catalog the user cannot see is not offered and finds nothing
    body = get(client, world.eve, "/search/?catalog=staging").content.decode()
    assert 'value="staging"' not in body and "staging.ml_team.churn" not in body


def test_the_version_page_says_why_registration_failed_or_that_it_is_pending(client, world):
    from registry import services
    from registry.models import ModelVersion

    services.version_set_status(version=world.v1, status=ModelVersion.FAILED, message="MLmodel has no signature")
    body = get(client, world.eve, IRIS_V1).content.decode()
    assert "Registration failed." in body and "MLmodel has no signature" in body and "badge-failed" in body
    services.version_set_status(version=world.v1, status=ModelVersion.PENDING)
    body = get(client, world.eve, IRIS_V1).content.decode()
    assert "Registration in progress." in body and "badge-pending" in body


def test_the_tree_lists_models_of_the_current_schema_only_and_loads_others_when_opened(client, world):
    body = get(client, world.eve, HOME).content.decode()
    assert ">ml_team<" in body and ">iris<" not in body  # closed: loaded when opened
    assert f'hx-get="{ML_TEAM}?part=tree"' in body
    part = client.get(ML_TEAM + "?part=tree").content.decode()
    assert ">iris<" in part and ">fraud<" not in part and "<html" not in part
    assert get(client, world.oscar, ML_TEAM + "?part=tree").status_code == 404
