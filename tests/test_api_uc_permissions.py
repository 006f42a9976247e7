"""GET/PATCH /permissions/{securable_type}/{full_name}: who may read and change grants, and
that a change takes effect at once and all-or-nothing."""

import pytest

from registry.models import AuditEvent

from .test_api_uc_support import assert_error, uc  # noqa: F401

IRIS_GRANTS = "permissions/registered_model/prod.ml_team.iris"


def test_it_lists_direct_and_inherited_grants_of_a_model(uc):
    response = uc("eve").get(IRIS_GRANTS)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["privilege_assignments"] == [{"principal": "eve", "principal_type": "user", "privileges": ["EXECUTE"]}]
    inherited = {(r["principal"], r["inherited_from_type"], r["inherited_from_name"]): r["privileges"]
                 for r in body["inherited_privilege_assignments"]}
    assert inherited[("tom", "schema", "prod.ml_team")] == ["APPLY TAG", "EXECUTE", "USE SCHEMA"]
    assert inherited[("cody", "schema", "prod.ml_team")] == ["CREATE MODEL", "USE SCHEMA"]
    assert inherited[("uma", "catalog", "prod")] == ["USE CATALOG"]
    assert inherited[("ml-admins", "catalog", "prod")] == ["USE CATALOG"]
    group_rows = [r for r in body["inherited_privilege_assignments"] if r["principal"] == "ml-admins"]
    assert {r["principal_type"] for r in group_rows} == {"group"}


@pytest.mark.parametrize(
    "who, path, status",
    [
        ("uma", "permissions/catalog/prod", 200),
        ("uma", "permissions/schema/prod.ml_team", 404),
        ("cody", IRIS_GRANTS, 404),
        ("oscar", "permissions/catalog/prod", 404),
        ("alice", "permissions/catalog/staging", 404),
        ("admin", "permissions/registered_model/staging.ml_team.churn", 200),
    ],
)
def test_it_shows_grants_only_on_objects_the_caller_may_see(uc, who, path, status):
    assert uc(who).get(path).status_code == status


def test_it_lets_the_owner_grant_and_the_grantee_gains_access_at_once(uc):
    assert_error(uc("cody").get("models/prod.ml_team.iris"), 404, "NOT_FOUND")
    response = uc("alice").patch(IRIS_GRANTS, {"changes": [{"principal": "cody", "add": ["EXECUTE"]}]})
    assert response.status_code == 200, response.content
    assert {"principal": "cody", "principal_type": "user", "privileges": ["EXECUTE"]} in response.json()["privilege_assignments"]
    assert uc("cody").get("models/prod.ml_team.iris").status_code == 200
    assert {"principal": "cody", "principal_type": "user", "privileges": ["EXECUTE"]} in (
        uc("alice").get(IRIS_GRANTS).json()["privilege_assignments"]
    )

    response = uc("alice").patch(IRIS_GRANTS, {"changes": [{"principal": "cody", "remove": ["EXECUTE"]}]})
    assert response.status_code == 200
    assert all(r["principal"] != "cody" for r in response.json()["privilege_assignments"])
    assert_error(uc("cody").get("models/prod.ml_team.iris"), 404, "NOT_FOUND")


def test_it_accepts_the_underscore_spelling_and_answers_with_spaces(uc):
    response = uc("alice").patch(IRIS_GRANTS, {"changes": [{"principal": "cody", "add": ["execute", "APPLY_TAG"]}]})
    assert response.status_code == 200
    row = next(r for r in response.json()["privilege_assignments"] if r["principal"] == "cody")
    assert row["privileges"] == ["APPLY TAG", "EXECUTE"]


def test_it_lets_a_group_owner_grant(uc):
    response = uc("gina").patch(
        "permissions/registered_model/prod.ml_team.fraud", {"changes": [{"principal": "eve", "add": ["EXECUTE"]}]}
    )
    assert response.status_code == 200
    assert uc("eve").get("models/prod.ml_team.fraud").status_code == 200


@pytest.mark.parametrize("who", ["eve", "tom"])
def test_it_refuses_grants_by_non_owners(uc, who):
    assert_error(
        uc(who).patch(IRIS_GRANTS, {"changes": [{"principal": "cody", "add": ["EXECUTE"]}]}),
        403, "PERMISSION_DENIED", "ownership",
    )
    assert_error(uc("cody").get("models/prod.ml_team.iris"), 404, "NOT_FOUND")


def test_it_refuses_catalog_grants_by_catalog_users(uc):
    assert_error(
        uc("alice").patch("permissions/catalog/prod", {"changes": [{"principal": "oscar", "add": ["USE CATALOG"]}]}),
        403, "PERMISSION_DENIED",
    )
    assert_error(
        uc("oscar").patch("permissions/catalog/prod", {"changes": [{"principal": "oscar", "add": ["USE CATALOG"]}]}),
        404, "NOT_FOUND",
    )
    assert_error(uc("oscar").get("catalogs/prod"), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    "changes, words",
    [
        ([{"principal": "cody", "add": ["EXECUTE"]}, {"principal": "tom", "add": ["FLY"]}], ["FLY", "allowed"]),
        ([{"principal": "cody", "add": ["EXECUTE"]}, {"principal": "nobody", "add": ["EXECUTE"]}], ["nobody"]),
        ([{"principal": "cody", "add": ["EXECUTE", "USE CATALOG"]}], ["USE CATALOG"]),  # not on a model
        ([{"principal": "cody", "add": ["EXECUTE"], "remove": [5]}], []),
        ([{"principal": "cody", "add": "EXECUTE"}], ["add"]),
        ([{"add": ["EXECUTE"]}], ["principal"]),
        ([], ["changes"]),
        ("EXECUTE", ["changes"]),
    ],
)
def test_it_refuses_a_bad_change_and_changes_nothing(uc, changes, words):
    events = AuditEvent.objects.count()
    before = uc("alice").get(IRIS_GRANTS).json()
    assert_error(uc("alice").patch(IRIS_GRANTS, {"changes": changes}), 400, "INVALID_ARGUMENT", *words)
    assert uc("alice").get(IRIS_GRANTS).json() == before
    assert AuditEvent.objects.count() == events
    assert_error(uc("cody").get("models/prod.ml_team.iris"), 404, "NOT_FOUND")


@pytest.mark.parametrize("securable_type", ["function", "table", "metastore", "%3Cscript%3E"])
def test_it_refuses_unknown_securable_types(uc, securable_type):
    response = uc("admin").get(f"permissions/{securable_type}/prod")
    assert_error(response, 400, "INVALID_ARGUMENT", "securable type")
    assert b"<script" not in response.content  # quoted, but escaped as \u003c


def test_it_accepts_the_securable_type_in_any_case(uc):
    assert uc("uma").get("permissions/CATALOG/prod").status_code == 200
