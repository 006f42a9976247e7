"""Registered models and versions over the UC API, persona by persona (PRODUCT.md §3)."""

import pytest

from registry.models import RegisteredModel

from .test_api_uc_support import assert_error, uc  # noqa: F401

IRIS = "models/prod.ml_team.iris"
FRAUD = "models/prod.ml_team.fraud"


def _full_names(response):
    assert response.status_code == 200, response.content
    return [row["full_name"] for row in response.json()["registered_models"]]


@pytest.mark.parametrize(
    "who, expected",
    [
        ("admin", ["prod.ml_team.fraud", "prod.ml_team.iris", "staging.ml_team.churn"]),
        ("alice", ["prod.ml_team.iris"]),
        ("gina", ["prod.ml_team.fraud"]),
        ("eve", ["prod.ml_team.iris"]),
        ("tom", ["prod.ml_team.fraud", "prod.ml_team.iris"]),
        ("cody", []),
        ("uma", []),
        ("oscar", []),
    ],
)
def test_it_lists_the_models_each_persona_may_see(uc, who, expected):
    assert _full_names(uc(who).get("models")) == expected


def test_it_filters_the_list_by_catalog_and_schema(uc):
    assert _full_names(uc("admin").get("models", {"catalog_name": "staging"})) == ["staging.ml_team.churn"]
    assert _full_names(uc("tom").get("models", {"catalog_name": "prod", "schema_name": "ml_team"})) == [
        "prod.ml_team.fraud", "prod.ml_team.iris",
    ]
    assert_error(uc("uma").get("models", {"catalog_name": "prod", "schema_name": "ml_team"}), 404, "NOT_FOUND")
    assert_error(uc("oscar").get("models", {"catalog_name": "prod"}), 404, "NOT_FOUND")
    assert_error(uc("admin").get("models", {"schema_name": "ml_team"}), 400, "INVALID_ARGUMENT", "catalog_name")


def test_it_answers_the_model_shape(uc, world):
    body = uc("eve").get(IRIS).json()
    assert body["name"] == "iris"
    assert body["catalog_name"] == "prod"
    assert body["schema_name"] == "ml_team"
    assert body["full_name"] == "prod.ml_team.iris"
    assert body["comment"] == "Iris *classifier*"
    assert body["owner"] == "alice"
    assert body["created_by"] == "alice"
    assert body["aliases"] == [{"alias_name": "Champion", "version_num": 2}]
    assert body["created_at"] == int(world.iris.created_at.timestamp() * 1000)


@pytest.mark.parametrize(
    "who, status",
    [("admin", 200), ("alice", 200), ("eve", 200), ("tom", 200), ("gina", 404), ("cody", 404), ("uma", 404),
     ("oscar", 404)],
)
def test_it_shows_iris_as_section_3_says(uc, who, status):
    response = uc(who).get(IRIS)
    assert response.status_code == status
    if status == 404:
        assert_error(response, 404, "NOT_FOUND", "prod.ml_team.iris")


def test_it_answers_404_for_anything_in_prod_to_an_outsider(uc):
    outsider = uc("oscar")
    for path in ("catalogs/prod", "schemas/prod.ml_team", IRIS, FRAUD, f"{IRIS}/versions", f"{IRIS}/versions/1",
                 "permissions/catalog/prod", "permissions/schema/prod.ml_team",
                 "permissions/registered_model/prod.ml_team.iris"):
        assert_error(outsider.get(path), 404, "NOT_FOUND")
    assert_error(outsider.patch(IRIS, {"comment": "x"}), 404, "NOT_FOUND")
    assert_error(outsider.delete(IRIS), 404, "NOT_FOUND")
    assert_error(outsider.post("models", {"name": "x", "catalog_name": "prod", "schema_name": "ml_team"}), 404, "NOT_FOUND")


def test_it_answers_400_for_a_model_name_without_three_levels(uc):
    assert_error(uc("admin").get("models/prod.ml_team"), 400, "INVALID_ARGUMENT", "three levels")


# --- Create ---------------------------------------------------------------------------------
def test_it_lets_cody_create_a_model_with_create_model_and_makes_him_owner(uc):
    response = uc("cody").post(
        "models", {"name": "Churn", "catalog_name": "prod", "schema_name": "ml_team", "comment": "cody's"}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["full_name"] == "prod.ml_team.churn"
    assert body["owner"] == "cody"
    assert body["comment"] == "cody's"
    assert body["aliases"] == []
    assert uc("cody").get("models/prod.ml_team.churn").status_code == 200  # owners see what they own


def test_it_refuses_model_creation_without_create_model_naming_it(uc):
    assert_error(
        uc("eve").post("models", {"name": "x", "catalog_name": "prod", "schema_name": "ml_team"}),
        403, "PERMISSION_DENIED", "CREATE MODEL",
    )
    assert_error(uc("uma").post("models", {"name": "x", "catalog_name": "prod", "schema_name": "ml_team"}), 404, "NOT_FOUND")
    assert_error(uc("cody").post("models", {"name": "x", "catalog_name": "staging", "schema_name": "ml_team"}), 404, "NOT_FOUND")
    assert not RegisteredModel.objects.filter(name="x").exists()


def test_it_refuses_a_duplicate_model(uc):
    assert_error(
        uc("alice").post("models", {"name": "IRIS", "catalog_name": "prod", "schema_name": "ml_team"}),
        409, "ALREADY_EXISTS", "prod.ml_team.iris",
    )


def test_it_requires_the_create_fields(uc):
    assert_error(uc("cody").post("models", {"name": "x"}), 400, "INVALID_ARGUMENT", "catalog_name", "schema_name")


# --- Update ---------------------------------------------------------------------------------
def test_it_lets_the_owner_edit_the_comment(uc, world):
    response = uc("alice").patch(IRIS, {"comment": "Better *classifier*"})
    assert response.status_code == 200
    assert response.json()["comment"] == "Better *classifier*"
    world.iris.refresh_from_db()
    assert world.iris.description == "Better *classifier*"


@pytest.mark.parametrize("who", ["eve", "tom"])
def test_it_refuses_comment_edits_by_readers_naming_what_is_missing(uc, world, who):
    """eve (EXECUTE) and tom (EXECUTE + APPLY TAG) see iris but do not own it."""
    assert uc(who).get(IRIS).status_code == 200
    assert_error(uc(who).patch(IRIS, {"comment": "hacked"}), 403, "PERMISSION_DENIED", "ownership")
    world.iris.refresh_from_db()
    assert world.iris.description == "Iris *classifier*"


def test_it_lets_a_member_of_the_owning_group_edit_fraud(uc, world):
    assert uc("gina").patch(FRAUD, {"comment": "by gina"}).status_code == 200
    assert_error(uc("tom").patch(FRAUD, {"comment": "by tom"}), 403, "PERMISSION_DENIED")
    world.fraud.refresh_from_db()
    assert world.fraud.description == "by gina"


def test_it_lets_the_admin_edit_anything(uc, world):
    assert uc("admin").patch(IRIS, {"comment": "admin"}).status_code == 200
    assert uc("admin").patch("models/staging.ml_team.churn", {"comment": "admin"}).status_code == 200


def test_it_renames_a_model_for_its_owner_with_create_model(uc):
    response = uc("alice").patch(IRIS, {"new_name": "iris_v2"})
    assert response.status_code == 200, response.content
    assert response.json()["full_name"] == "prod.ml_team.iris_v2"
    assert_error(uc("alice").get(IRIS), 404, "NOT_FOUND")
    assert uc("eve").get("models/prod.ml_team.iris_v2").status_code == 200  # grants follow the model
    assert_error(uc("tom").patch("models/prod.ml_team.iris_v2", {"new_name": "mine"}), 403, "PERMISSION_DENIED")


def test_it_transfers_ownership_to_a_group(uc, world):
    response = uc("alice").patch(IRIS, {"owner": "ml-admins"})
    assert response.status_code == 200
    assert response.json()["owner"] == "ml-admins"
    assert uc("gina").patch(IRIS, {"comment": "now gina's too"}).status_code == 200
    assert_error(uc("alice").patch(IRIS, {"comment": "not mine any more"}), 404, "NOT_FOUND")


def test_it_applies_all_of_a_patch_or_none_of_it(uc, world):
    assert_error(uc("alice").patch(IRIS, {"comment": "changed", "new_name": "bad/name"}), 400, "INVALID_ARGUMENT", "slash")
    assert_error(uc("alice").patch(IRIS, {"comment": "changed", "owner": "nobody-here"}), 400, "INVALID_ARGUMENT")
    world.iris.refresh_from_db()
    assert (world.iris.full_name, world.iris.description, world.iris.owner_name) == (
        "prod.ml_team.iris", "Iris *classifier*", "alice",
    )


# --- Delete ---------------------------------------------------------------------------------
def test_it_deletes_a_model_only_for_its_owner(uc):
    assert_error(uc("eve").delete(IRIS), 403, "PERMISSION_DENIED")
    assert_error(uc("gina").delete(IRIS), 404, "NOT_FOUND")
    response = uc("alice").delete(IRIS)
    assert response.status_code == 200
    assert response.json() == {}
    assert_error(uc("admin").get(IRIS), 404, "NOT_FOUND")


# --- Versions -------------------------------------------------------------------------------
def test_it_lists_versions_newest_first_to_readers(uc):
    response = uc("eve").get(f"{IRIS}/versions")
    assert response.status_code == 200
    rows = response.json()["model_versions"]
    assert [row["version"] for row in rows] == [2, 1]
    assert rows[0]["aliases"] == [{"alias_name": "Champion", "version_num": 2}]
    assert_error(uc("gina").get(f"{IRIS}/versions"), 404, "NOT_FOUND")


def test_it_answers_the_version_shape(uc):
    body = uc("tom").get(f"{IRIS}/versions/1").json()
    assert {k: body[k] for k in ("model_name", "catalog_name", "schema_name", "version", "status", "source",
                                 "run_id", "comment", "created_by")} == {
        "model_name": "iris", "catalog_name": "prod", "schema_name": "ml_team", "version": 1, "status": "READY",
        "source": "runs:/abc/model", "run_id": "abc", "comment": "", "created_by": "alice",
    }
    assert isinstance(body["created_at"], int)


def test_it_answers_404_for_a_missing_version_and_400_for_a_non_number(uc):
    assert_error(uc("eve").get(f"{IRIS}/versions/99"), 404, "NOT_FOUND", "version=99")
    assert_error(uc("eve").get(f"{IRIS}/versions/one"), 400, "INVALID_ARGUMENT", "integer")
    assert_error(uc("oscar").get(f"{IRIS}/versions/1"), 404, "NOT_FOUND")


def test_it_lets_only_the_owner_edit_a_version_comment(uc, world):
    assert uc("alice").patch(f"{IRIS}/versions/1", {"comment": "first"}).json()["comment"] == "first"
    assert_error(uc("eve").patch(f"{IRIS}/versions/1", {"comment": "hacked"}), 403, "PERMISSION_DENIED")
    world.v1.refresh_from_db()
    assert world.v1.description == "first"


# --- Inheritance ----------------------------------------------------------------------------
def test_it_lets_an_execute_grant_on_the_catalog_reach_every_model_in_it(uc):
    assert_error(uc("eve").get(FRAUD), 404, "NOT_FOUND")
    response = uc("admin").patch("permissions/catalog/prod", {"changes": [{"principal": "eve", "add": ["EXECUTE"]}]})
    assert response.status_code == 200, response.content
    assert uc("eve").get(FRAUD).status_code == 200
    assert _full_names(uc("eve").get("models")) == ["prod.ml_team.fraud", "prod.ml_team.iris"]
    assert_error(uc("eve").patch(FRAUD, {"comment": "x"}), 403, "PERMISSION_DENIED")  # reading is not owning
