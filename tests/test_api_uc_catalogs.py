"""Catalogs and schemas over the UC API, persona by persona (PRODUCT.md §3)."""

import pytest

from registry.models import Catalog, Schema

from .test_api_uc_support import assert_error, uc  # noqa: F401


def _names(response, key):
    assert response.status_code == 200, response.content
    return [row["name"] if key != "schemas" else row["full_name"] for row in response.json()[key]]


# --- Catalogs -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "who, expected",
    [("admin", ["prod", "staging"]), ("alice", ["prod"]), ("uma", ["prod"]), ("cody", ["prod"]), ("oscar", [])],
)
def test_it_lists_the_catalogs_each_persona_may_use(uc, who, expected):
    assert _names(uc(who).get("catalogs"), "catalogs") == expected


def test_it_answers_the_catalog_shape(uc, world):
    body = uc("uma").get("catalogs/prod").json()
    assert body["name"] == "prod"
    assert body["comment"] == "Production models"
    assert body["owner"] == "admin"
    assert body["created_by"] == "admin"
    assert body["created_at"] == int(world.prod.created_at.timestamp() * 1000)
    assert isinstance(body["updated_at"], int)


@pytest.mark.parametrize("who, status", [("admin", 200), ("alice", 200), ("uma", 200), ("oscar", 404)])
def test_it_shows_prod_only_to_who_may_use_it(uc, who, status):
    response = uc(who).get("catalogs/prod")
    assert response.status_code == status
    if status == 404:
        assert_error(response, 404, "NOT_FOUND", "prod")


def test_it_hides_staging_from_prod_users(uc):
    assert_error(uc("alice").get("catalogs/staging"), 404, "NOT_FOUND")
    assert uc("admin").get("catalogs/staging").status_code == 200


def test_it_lets_only_admins_create_catalogs(uc):
    response = uc("admin").post("catalogs", {"name": "Dev", "comment": "Sandbox"})
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "dev"  # stored lowercase
    assert response.json()["owner"] == "admin"
    assert_error(uc("alice").post("catalogs", {"name": "mine"}), 403, "PERMISSION_DENIED", "admin")
    assert not Catalog.objects.filter(name="mine").exists()


def test_it_refuses_a_duplicate_catalog(uc):
    assert_error(uc("admin").post("catalogs", {"name": "PROD"}), 409, "ALREADY_EXISTS", "prod")


def test_it_lets_the_catalog_owner_edit_its_comment(uc, world):
    response = uc("admin").patch("catalogs/prod", {"comment": "Serving models"})
    assert response.status_code == 200
    assert response.json()["comment"] == "Serving models"
    world.prod.refresh_from_db()
    assert world.prod.description == "Serving models"


@pytest.mark.parametrize("who, status, code", [("alice", 403, "PERMISSION_DENIED"), ("oscar", 404, "NOT_FOUND")])
def test_it_refuses_catalog_edits_by_non_owners(uc, world, who, status, code):
    assert_error(uc(who).patch("catalogs/prod", {"comment": "hacked"}), status, code)
    world.prod.refresh_from_db()
    assert world.prod.description == "Production models"


def test_it_transfers_a_catalog_to_a_group_whose_members_then_own_it(uc, world):
    response = uc("admin").patch("catalogs/prod", {"owner": "ml-admins"})
    assert response.status_code == 200
    assert response.json()["owner"] == "ml-admins"
    assert uc("gina").patch("catalogs/prod", {"comment": "by gina"}).status_code == 200


def test_it_refuses_renaming_a_catalog(uc):
    assert_error(uc("admin").patch("catalogs/prod", {"new_name": "production"}), 400, "INVALID_ARGUMENT", "renamed")


def test_it_deletes_only_empty_catalogs_and_only_for_owners(uc):
    assert_error(uc("admin").delete("catalogs/prod"), 400, "INVALID_ARGUMENT", "not empty")
    assert_error(uc("alice").delete("catalogs/prod"), 403, "PERMISSION_DENIED")
    assert_error(uc("oscar").delete("catalogs/prod"), 404, "NOT_FOUND")
    assert uc("admin").post("catalogs", {"name": "tmp"}).status_code == 200
    response = uc("admin").delete("catalogs/tmp")
    assert response.status_code == 200
    assert response.json() == {}
    assert_error(uc("admin").get("catalogs/tmp"), 404, "NOT_FOUND")


# --- Schemas --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "who, expected",
    [("admin", ["prod.ml_team"]), ("alice", ["prod.ml_team"]), ("eve", ["prod.ml_team"]), ("uma", [])],
)
def test_it_lists_the_schemas_of_a_catalog_each_persona_may_use(uc, who, expected):
    assert _names(uc(who).get("schemas", {"catalog_name": "prod"}), "schemas") == expected


def test_it_lists_all_visible_schemas_without_a_catalog(uc):
    assert _names(uc("admin").get("schemas"), "schemas") == ["prod.ml_team", "staging.ml_team"]
    assert _names(uc("alice").get("schemas"), "schemas") == ["prod.ml_team"]


def test_it_answers_404_listing_schemas_of_an_invisible_catalog(uc):
    assert_error(uc("oscar").get("schemas", {"catalog_name": "prod"}), 404, "NOT_FOUND")
    assert_error(uc("alice").get("schemas", {"catalog_name": "staging"}), 404, "NOT_FOUND")


def test_it_answers_the_schema_shape(uc):
    body = uc("alice").get("schemas/prod.ml_team").json()
    assert {k: body[k] for k in ("name", "catalog_name", "full_name", "owner", "created_by")} == {
        "name": "ml_team", "catalog_name": "prod", "full_name": "prod.ml_team", "owner": "admin", "created_by": "admin",
    }


@pytest.mark.parametrize("who, status", [("admin", 200), ("alice", 200), ("tom", 200), ("uma", 404), ("oscar", 404)])
def test_it_shows_prod_ml_team_as_section_3_says(uc, who, status):
    """uma holds USE CATALOG on prod but not USE SCHEMA: the catalog yes, the schema no."""
    response = uc(who).get("schemas/prod.ml_team")
    assert response.status_code == status
    if status == 404:
        assert_error(response, 404, "NOT_FOUND")


def test_it_answers_400_for_a_schema_name_without_two_levels(uc):
    assert_error(uc("admin").get("schemas/prod"), 400, "INVALID_ARGUMENT", "two levels")


def test_it_needs_create_schema_to_create_a_schema(uc, world):
    assert_error(
        uc("alice").post("schemas", {"name": "alice_team", "catalog_name": "prod"}), 403, "PERMISSION_DENIED",
        "CREATE SCHEMA",
    )
    assert_error(uc("oscar").post("schemas", {"name": "x", "catalog_name": "prod"}), 404, "NOT_FOUND")
    assert not Schema.objects.filter(name__in=["alice_team", "x"]).exists()
    uc("admin").patch("permissions/catalog/prod", {"changes": [{"principal": "alice", "add": ["CREATE_SCHEMA"]}]})
    response = uc("alice").post("schemas", {"name": "alice_team", "catalog_name": "prod", "comment": "mine"})
    assert response.status_code == 200, response.content
    assert response.json()["owner"] == "alice"
    assert response.json()["full_name"] == "prod.alice_team"
    assert response.json()["comment"] == "mine"


def test_it_refuses_a_duplicate_schema(uc):
    assert_error(uc("admin").post("schemas", {"name": "ML_TEAM", "catalog_name": "prod"}), 409, "ALREADY_EXISTS")


@pytest.mark.parametrize(
    "who, status, code", [("admin", 200, None), ("alice", 403, "PERMISSION_DENIED"), ("uma", 404, "NOT_FOUND")]
)
def test_it_lets_only_the_schema_owner_edit_it(uc, world, who, status, code):
    response = uc(who).patch("schemas/prod.ml_team", {"comment": f"by {who}"})
    world.ml_team.refresh_from_db()
    if status == 200:
        assert response.status_code == 200
        assert world.ml_team.description == "by admin"
    else:
        assert_error(response, status, code)
        assert world.ml_team.description == ""


def test_it_deletes_only_empty_schemas_and_only_for_owners(uc):
    assert_error(uc("admin").delete("schemas/prod.ml_team"), 400, "INVALID_ARGUMENT", "not empty")
    assert_error(uc("alice").delete("schemas/prod.ml_team"), 403, "PERMISSION_DENIED")
    assert_error(uc("uma").delete("schemas/prod.ml_team"), 404, "NOT_FOUND")
    assert uc("admin").post("schemas", {"name": "tmp", "catalog_name": "prod"}).status_code == 200
    assert uc("admin").delete("schemas/prod.tmp").status_code == 200
    assert_error(uc("admin").get("schemas/prod.tmp"), 404, "NOT_FOUND")
