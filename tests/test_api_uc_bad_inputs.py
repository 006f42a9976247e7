"""BAD_INPUTS.md ("Names", "Requests and sessions") against the UC API: each bad input gets a
400/413/415 naming the rule, and nothing is stored or changed."""

import time

import pytest

from registry.models import AuditEvent, Catalog, RegisteredModel, Schema

from .test_api_uc_support import BASE, assert_error, uc  # noqa: F401

BAD_NAMES = [
    ("m%6fdel", "percent"),  # CVE-2024-3099: would collide with `model` once decoded
    ("a/b", "slash"),
    ("a:b", "colon"),
    ("a.b", "period"),
    (".", "period"),
    ("a b", "space"),
    (" a", "space"),
    ("a\tb", "control"),
    ("a\nb", "control"),
    ("a\x07b", "control"),
    ("a\u200bb", "control"),
    ("a\x00b", "null"),
    ("", "empty"),
    ("x" * 256, "255"),
    ("x" * 1_000_000, "255"),  # CVE-2024-6838
]


@pytest.fixture
def counts(world):
    def snapshot():
        return (Catalog.objects.count(), Schema.objects.count(), RegisteredModel.objects.count(),
                AuditEvent.objects.count())
    return snapshot


@pytest.mark.parametrize("name, rule", BAD_NAMES, ids=[repr(n[:12]) for n, _ in BAD_NAMES])
def test_it_refuses_a_bad_model_name_naming_the_rule(uc, counts, name, rule):
    before = counts()
    response = uc("cody").post("models", {"name": name, "catalog_name": "prod", "schema_name": "ml_team"})
    message = assert_error(response, 400, "INVALID_ARGUMENT", rule)
    assert len(message) < 500  # a 1 MB name is not echoed back
    assert counts() == before


def test_a_1mb_name_is_refused_without_touching_the_database_with_it(uc, counts):
    """CVE-2024-6838: refused by its length before any query carries it (a loose time bound
    on top, loose because test machines are busy)."""
    from django.db import connection

    sent = []  # every query's text and parameters, however the driver binds them

    def record(execute, sql, params, many, context):
        sent.append((sql or "", params or ()))
        return execute(sql, params, many, context)

    before = counts()
    started = time.monotonic()
    with connection.execute_wrapper(record):
        response = uc("cody").post("models", {"name": "x" * 1_000_000, "catalog_name": "prod", "schema_name": "ml_team"})
    assert time.monotonic() - started < 10
    assert_error(response, 400, "INVALID_ARGUMENT", "at most 255")
    assert sent, "the request made no query at all: the check below would prove nothing"
    assert all(len(sql) < 10_000 and all(len(str(p)) < 10_000 for p in params) for sql, params in sent)
    assert counts() == before


@pytest.mark.parametrize("name, rule", BAD_NAMES[:6] + BAD_NAMES[-2:], ids=[repr(n[:12]) for n, _ in BAD_NAMES[:6] + BAD_NAMES[-2:]])
def test_it_refuses_bad_catalog_and_schema_names(uc, counts, name, rule):
    before = counts()
    assert_error(uc("admin").post("catalogs", {"name": name}), 400, "INVALID_ARGUMENT", rule)
    assert_error(uc("admin").post("schemas", {"name": name, "catalog_name": "prod"}), 400, "INVALID_ARGUMENT", rule)
    assert counts() == before


def test_it_refuses_a_bad_new_name_and_keeps_the_old_one(uc, world):
    assert_error(uc("alice").patch("models/prod.ml_team.iris", {"new_name": "m%6fdel"}), 400, "INVALID_ARGUMENT", "percent")
    assert_error(
        uc("alice").patch("models/prod.ml_team.iris", {"new_name": "staging.ml_team.iris"}), 400, "INVALID_ARGUMENT",
        "another schema",
    )
    world.iris.refresh_from_db()
    assert world.iris.full_name == "prod.ml_team.iris"


@pytest.mark.parametrize("value", [None, 5, True, ["prod"], {"n": 1}])
def test_it_refuses_names_that_are_not_strings(uc, counts, value):
    before = counts()
    response = uc("cody").post("models", {"name": "ok", "catalog_name": value, "schema_name": "ml_team"})
    assert response.status_code in (400, 404)  # 5 reads as "5": a catalog nobody has
    assert response.json()["error_code"] in ("INVALID_ARGUMENT", "NOT_FOUND")
    assert counts() == before


# --- Content type and body ------------------------------------------------------------------
@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "<script>alert(1)</script>",
     "application/jsonx", ""],
)
def test_it_refuses_writes_that_are_not_json_and_changes_nothing(uc, world, counts, content_type):
    """CVE-2023-43472: a cross-origin `text/plain` POST must not act. CVE-2023-6568: the
    Content-Type is never echoed."""
    before = counts()
    client = uc("cody").client
    body = '{"name": "csrf", "catalog_name": "prod", "schema_name": "ml_team"}'
    response = client.generic("POST", BASE + "models", body, content_type=content_type)
    assert_error(response, 415, "INVALID_ARGUMENT", "application/json")
    assert b"<script" not in response.content and b"script" not in response.content
    response = uc("alice").client.generic("PATCH", BASE + "models/prod.ml_team.iris", '{"comment": "csrf"}',
                                          content_type=content_type)
    assert response.status_code == 415
    world.iris.refresh_from_db()
    assert world.iris.description == "Iris *classifier*"
    assert counts() == before


@pytest.mark.parametrize(
    "body, words",
    [
        ('{"name": "x", "catalog_name": "prod", ', ["not valid JSON"]),
        ("[1, 2]", ["JSON object"]),
        ('"a string"', ["JSON object"]),
        ("null", ["JSON object"]),
        ('{"name": NaN, "catalog_name": "prod", "schema_name": "ml_team"}', ["NaN"]),
        (b"\xff\xfe{}", ["UTF-8"]),
        ("[" * 100_000 + "]" * 100_000, []),
    ],
)
def test_it_answers_400_for_a_body_that_is_not_a_json_object(uc, counts, body, words):
    before = counts()
    response = uc("cody").client.generic("POST", BASE + "models", body, content_type="application/json")
    assert_error(response, 400, "INVALID_ARGUMENT", *words)
    assert counts() == before


def test_it_refuses_duplicate_keys_instead_of_picking_one(uc, counts):
    """mlflow-oidc-auth #270: one reader takes the first key, another the last. We take neither."""
    before = counts()
    body = '{"name": "mine", "name": "victim", "catalog_name": "prod", "schema_name": "ml_team"}'
    response = uc("cody").client.generic("POST", BASE + "models", body, content_type="application/json")
    assert_error(response, 400, "INVALID_ARGUMENT", "repeats the key 'name'")
    assert counts() == before


def test_it_answers_413_for_a_body_over_the_limit(uc, counts, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    before = counts()
    response = uc("cody").post("models", {"name": "x", "catalog_name": "prod", "schema_name": "ml_team",
                                          "comment": "y" * 2000})
    assert_error(response, 413, "INVALID_ARGUMENT", "larger than 1000 bytes")
    assert counts() == before


def test_it_ignores_unknown_fields(uc):
    response = uc("cody").post(
        "models", {"name": "extra", "catalog_name": "prod", "schema_name": "ml_team", "owner": "alice", "x": [1]}
    )
    assert response.status_code == 200
    assert response.json()["owner"] == "cody"  # `owner` is not a create field: ignored, not obeyed


# --- Query string versus body ---------------------------------------------------------------
def test_a_write_takes_its_target_from_the_path_and_body_never_the_query(uc, world):
    """mlflow-oidc-auth #285: `?name=mine` in the query, the victim in the path/body."""
    response = uc("alice").patch(
        "models/prod.ml_team.fraud?name=prod.ml_team.iris&full_name=prod.ml_team.iris",
        {"comment": "pwned", "name": "prod.ml_team.fraud"},
    )
    assert_error(response, 404, "NOT_FOUND")  # alice cannot see fraud: checked against fraud
    world.fraud.refresh_from_db()
    world.iris.refresh_from_db()
    assert world.fraud.description == ""
    assert world.iris.description == "Iris *classifier*"


def test_a_create_takes_its_fields_from_the_body_only(uc, counts):
    before = counts()
    response = uc("cody").post(
        "models?catalog_name=prod&schema_name=ml_team&name=mine",
        {"name": "victim", "catalog_name": "staging", "schema_name": "ml_team"},
    )
    assert_error(response, 404, "NOT_FOUND")  # cody cannot see staging: the body's catalog is the one used
    assert counts() == before
    response = uc("cody").post("models?name=mine&catalog_name=prod&schema_name=ml_team", {})
    assert_error(response, 400, "INVALID_ARGUMENT", "name", "required")
    assert counts() == before


def test_a_grant_takes_its_changes_from_the_body_only(uc):
    response = uc("eve").patch(
        "permissions/registered_model/prod.ml_team.iris?securable_type=catalog&full_name=staging",
        {"changes": [{"principal": "eve", "add": ["EXECUTE"]}]},
    )
    assert_error(response, 403, "PERMISSION_DENIED")


# --- Paging ---------------------------------------------------------------------------------
def test_it_pages_lists_with_an_opaque_token(uc):
    first = uc("admin").get("catalogs", {"max_results": 1}).json()
    assert [c["name"] for c in first["catalogs"]] == ["prod"]
    second = uc("admin").get("catalogs", {"max_results": 1, "page_token": first["next_page_token"]}).json()
    assert [c["name"] for c in second["catalogs"]] == ["staging"]
    assert "next_page_token" not in second


@pytest.mark.parametrize(
    "params",
    [{"max_results": "abc"}, {"max_results": "-1"}, {"max_results": str(10**9)}, {"max_results": "1001"},
     {"page_token": "garbage!"}, {"page_token": "b2Zmc2V0Oi0x"}, {"page_token": "eA=="}],
)
def test_it_answers_400_for_bad_paging_parameters(uc, params):
    assert_error(uc("admin").get("models", params), 400, "INVALID_ARGUMENT")
