"""The MLflow model registry endpoints × personas (tests/conftest.py's `world`).

Outsiders get 404 RESOURCE_DOES_NOT_EXIST for what they may not see; a persona who sees a model
but may not change it gets 403 PERMISSION_DENIED, and nothing changes."""

import pytest

from registry import services
from registry.models import Alias, AuditEvent, ModelTag, ModelVersion, RegisteredModel, VersionTag
from tests.mlflow_support import as_user, error

IRIS = "prod.ml_team.iris"
NOT_SEEING_IRIS = ["oscar", "uma", "cody", "gina"]


def _snapshot():
    return (
        list(RegisteredModel.objects.order_by("pk").values_list("full_name", "description", "updated_at")),
        list(ModelVersion.objects.order_by("pk").values_list("model_id", "version", "description", "status")),
        list(ModelTag.objects.order_by("pk").values_list("model_id", "key", "value")),
        list(VersionTag.objects.order_by("pk").values_list("version_id", "key", "value")),
        list(Alias.objects.order_by("pk").values_list("model_id", "name", "version_id")),
        AuditEvent.objects.count(),
    )


# --- Reads ----------------------------------------------------------------------------------
READS = [
    ("registered-models/get", {"name": IRIS}),
    ("model-versions/get", {"name": IRIS, "version": "1"}),
    ("registered-models/alias", {"name": IRIS, "alias": "Champion"}),
    ("registered-models/get-latest-versions", {"name": IRIS}),
    ("model-versions/get-download-uri", {"name": IRIS, "version": "2"}),
]


def test_it_hides_a_model_from_who_may_not_see_it(world):
    for persona in NOT_SEEING_IRIS:
        for path, params in READS:
            message = error(as_user(persona).get(path, params), 404, "RESOURCE_DOES_NOT_EXIST")
            assert message == f"Registered Model with name={IRIS} not found"


def test_it_shows_a_model_to_who_may_see_it(world):
    for persona in ["alice", "eve", "tom", "admin"]:
        for path, params in READS:
            assert as_user(persona).get(path, params).status_code == 200, (persona, path)


def test_it_answers_mlflow_shapes(world):
    body = as_user("eve").get("registered-models/get", {"name": "Prod.ML_team.Iris"}).json()["registered_model"]
    assert body["name"] == IRIS
    assert body["aliases"] == [{"alias": "Champion", "version": "2"}]
    assert body["tags"] == [{"key": "task", "value": "classification"}]
    assert body["user_id"] == "alice"
    assert isinstance(body["creation_timestamp"], int) and body["creation_timestamp"] > 1_600_000_000_000
    [latest] = body["latest_versions"]
    assert latest["version"] == "2" and latest["current_stage"] == "None" and latest["aliases"] == ["Champion"]

    version = as_user("eve").get("model-versions/get", {"name": IRIS, "version": "1"}).json()["model_version"]
    assert version == {
        **version,
        "name": IRIS, "version": "1", "current_stage": "None", "source": "runs:/abc/model", "run_id": "abc",
        "status": "READY", "tags": [], "aliases": [], "user_id": "alice",
    }
    by_alias = as_user("eve").get("registered-models/alias", {"name": IRIS, "alias": "champion"}).json()
    assert by_alias["model_version"]["version"] == "2"
    uri = as_user("eve").get("model-versions/get-download-uri", {"name": IRIS, "version": "2"}).json()
    assert uri == {"artifact_uri": f"mlflow-artifacts:/registered-models/{IRIS}/2"}


def test_user_id_falls_back_to_the_owner_when_the_creator_is_gone(world):
    """MLflow's `user_id`: the creator; a model whose creator was deleted shows its owner (a user
    or a group), a version ""; the same in a read and in a search page (which copies the model's
    kept doc: `registry/docs.py`)."""
    def shown():
        model = as_user("eve").get("registered-models/get", {"name": IRIS}).json()["registered_model"]
        [found] = [m for m in as_user("eve").get("registered-models/search", {}).json()["registered_models"]
                   if m["name"] == IRIS]
        assert found == model
        version = as_user("eve").get("model-versions/get", {"name": IRIS, "version": "1"}).json()["model_version"]
        return model["user_id"], model["latest_versions"][0]["user_id"], version["user_id"]

    assert shown() == ("alice", "alice", "alice")
    services.owner_transfer(actor=world.admin, obj=world.iris, principal="gina")
    assert shown() == ("alice", "alice", "alice")
    world.alice.delete()
    assert shown() == ("gina", "", "")
    services.owner_transfer(actor=world.admin, obj=world.iris, principal="ml-admins")
    assert shown() == ("ml-admins", "", "")


def test_it_answers_unauthenticated_without_credentials(world):
    error(as_user(None).get("registered-models/get", {"name": IRIS}), 401, "UNAUTHENTICATED")
    error(as_user(None).post("registered-models/create", {"name": "prod.ml_team.x"}), 401, "UNAUTHENTICATED")


def test_it_refuses_wrong_passwords(world):
    api = as_user("alice")
    api.headers["HTTP_AUTHORIZATION"] = "Basic YWxpY2U6d3Jvbmc="  # alice:wrong
    error(api.get("registered-models/get", {"name": IRIS}), 401, "UNAUTHENTICATED")


def test_it_accepts_a_bearer_token(world):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=world.eve)
    api = as_user(None)
    api.headers["HTTP_AUTHORIZATION"] = f"Bearer {token.key}"
    assert api.get("registered-models/get", {"name": IRIS}).status_code == 200


def test_it_names_missing_things_as_mlflow_does(world):
    alice = as_user("alice")
    assert error(alice.get("registered-models/get", {"name": "prod.ml_team.nope"}), 404, "RESOURCE_DOES_NOT_EXIST") == (
        "Registered Model with name=prod.ml_team.nope not found"
    )
    assert error(alice.get("model-versions/get", {"name": IRIS, "version": "9"}), 404, "RESOURCE_DOES_NOT_EXIST") == (
        f"Model Version (name={IRIS}, version=9) not found"
    )
    assert error(alice.get("registered-models/alias", {"name": IRIS, "alias": "Nope"}), 400, "INVALID_PARAMETER_VALUE") == (
        "Registered model alias Nope not found."
    )
    assert "must be an integer" in error(
        alice.get("model-versions/get", {"name": IRIS, "version": "x"}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert "name" in error(alice.get("registered-models/get"), 400, "INVALID_PARAMETER_VALUE")
    assert "three levels" in error(alice.get("registered-models/get", {"name": "iris"}), 400, "INVALID_PARAMETER_VALUE")


def test_it_answers_unknown_endpoints_in_json(world):
    error(as_user("alice").get("registered-models/nope"), 404, "ENDPOINT_NOT_FOUND")
    error(as_user("alice").get("/api/3.0/mlflow/server-info"), 404, "ENDPOINT_NOT_FOUND")


def test_latest_versions_know_only_stage_none(world):
    alice = as_user("alice")
    assert [v["version"] for v in alice.post("registered-models/get-latest-versions", {"name": IRIS}).json()["model_versions"]] == ["2"]
    assert alice.post("registered-models/get-latest-versions", {"name": IRIS, "stages": ["Production"]}).json() == {"model_versions": []}
    assert len(alice.post("registered-models/get-latest-versions", {"name": IRIS, "stages": ["None"]}).json()["model_versions"]) == 1


# --- Creating models --------------------------------------------------------------------------
def test_it_creates_a_model_with_create_model(world):
    response = as_user("cody").post(
        "registered-models/create",
        {"name": "prod.ml_team.Churn2", "description": "d", "tags": [{"key": "k", "value": "v"}], "unknown": 1},
    )
    assert response.status_code == 200, response.content
    body = response.json()["registered_model"]
    assert body["name"] == "prod.ml_team.churn2" and body["description"] == "d"
    assert body["tags"] == [{"key": "k", "value": "v"}] and body["latest_versions"] == []
    assert RegisteredModel.objects.get(full_name="prod.ml_team.churn2").owner_user == world.cody


CREATE_REFUSALS = [
        ("eve", "prod.ml_team.new", 403, "PERMISSION_DENIED"),  # sees the schema, no CREATE MODEL
        ("tom", "prod.ml_team.new", 403, "PERMISSION_DENIED"),
        ("oscar", "prod.ml_team.new", 404, "RESOURCE_DOES_NOT_EXIST"),  # sees no schema
        ("uma", "prod.ml_team.new", 404, "RESOURCE_DOES_NOT_EXIST"),
        ("alice", "staging.ml_team.new", 404, "RESOURCE_DOES_NOT_EXIST"),
        ("alice", "nocatalog.ml_team.new", 404, "RESOURCE_DOES_NOT_EXIST"),
        ("alice", "prod.noschema.new", 404, "RESOURCE_DOES_NOT_EXIST"),
        ("alice", "prod.ml_team.iris", 400, "RESOURCE_ALREADY_EXISTS"),
        ("alice", "prod.ml_team", 400, "INVALID_PARAMETER_VALUE"),
        ("alice", "prod.ml_team.m%6fdel", 400, "INVALID_PARAMETER_VALUE"),
        ("alice", "prod.ml_team.a/b", 400, "INVALID_PARAMETER_VALUE"),
        ("alice", "prod.ml_team.a:b", 400, "INVALID_PARAMETER_VALUE"),
        ("alice", "prod.ml_team.a b", 400, "INVALID_PARAMETER_VALUE"),
        ("alice", "prod.ml_team." + "x" * 256, 400, "INVALID_PARAMETER_VALUE"),
        ("alice", "prod.ml_team.x\x01", 400, "INVALID_PARAMETER_VALUE"),
        ("alice", "", 400, "INVALID_PARAMETER_VALUE"),
    ]


def test_it_refuses_creating_models(world):
    before = _snapshot()
    for persona, name, status, code in CREATE_REFUSALS:
        error(as_user(persona).post("registered-models/create", {"name": name}), status, code)
    assert _snapshot() == before


def test_it_refuses_a_one_megabyte_name_fast(world):
    error(as_user("alice").post("registered-models/create", {"name": "p." * 500_000}), 400, "INVALID_PARAMETER_VALUE")


def test_it_refuses_non_json_writes(world):
    before = _snapshot()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "<script>alert(1)</script>"):
        response = as_user("alice").post(
            "registered-models/create", '{"name": "prod.ml_team.csrf"}', content_type=content_type
        )
        assert response.status_code == 400, response.content
        assert b"<script" not in response.content
    assert _snapshot() == before


def test_writes_read_the_body_never_the_query(world):
    response = as_user("alice").client.patch(
        "/api/2.0/mlflow/registered-models/update?name=prod.ml_team.fraud",
        '{"name": "prod.ml_team.iris", "description": "mine"}',
        content_type="application/json", **as_user("alice").headers,
    )
    assert response.status_code == 200
    world.fraud.refresh_from_db()
    assert world.fraud.description == "" and RegisteredModel.objects.get(pk=world.iris.pk).description == "mine"


def test_duplicate_json_keys_are_refused(world):
    before = _snapshot()
    response = as_user("alice").patch(
        "registered-models/update", '{"name": "prod.ml_team.iris", "name": "prod.ml_team.fraud", "description": "x"}'
    )
    assert response.status_code == 400
    assert _snapshot() == before


# --- Writes by owners -------------------------------------------------------------------------
def test_the_owner_changes_a_model(world):
    alice = as_user("alice")
    assert alice.patch("registered-models/update", {"name": IRIS, "description": "new"}).json()["registered_model"]["description"] == "new"
    assert alice.post("registered-models/set-tag", {"name": IRIS, "key": "stage", "value": "x"}).json() == {}
    assert alice.delete("registered-models/delete-tag", {"name": IRIS, "key": "stage"}).json() == {}
    assert alice.delete("registered-models/delete-tag", {"name": IRIS, "key": "never-there"}).json() == {}
    assert alice.post("registered-models/alias", {"name": IRIS, "alias": "Challenger", "version": "1"}).json() == {}
    assert alice.get("registered-models/alias", {"name": IRIS, "alias": "Challenger"}).json()["model_version"]["version"] == "1"
    assert alice.delete("registered-models/alias", {"name": IRIS, "alias": "Challenger"}).json() == {}
    assert alice.delete("registered-models/alias", {"name": IRIS, "alias": "never-there"}).json() == {}
    assert alice.patch("model-versions/update", {"name": IRIS, "version": "1", "description": "v1"}).json()["model_version"]["description"] == "v1"
    assert alice.post("model-versions/set-tag", {"name": IRIS, "version": "1", "key": "ok", "value": "yes"}).json() == {}
    assert alice.get("model-versions/get", {"name": IRIS, "version": "1"}).json()["model_version"]["tags"] == [{"key": "ok", "value": "yes"}]
    assert alice.delete("model-versions/delete-tag", {"name": IRIS, "version": "1", "key": "ok"}).json() == {}
    renamed = alice.post("registered-models/rename", {"name": IRIS, "new_name": "prod.ml_team.iris2"}).json()
    assert renamed["registered_model"]["name"] == "prod.ml_team.iris2"
    error(alice.get("registered-models/get", {"name": IRIS}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert alice.delete("model-versions/delete", {"name": "prod.ml_team.iris2", "version": "1"}).json() == {}
    error(alice.get("model-versions/get", {"name": "prod.ml_team.iris2", "version": "1"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert alice.delete("registered-models/delete", {"name": "prod.ml_team.iris2"}).json() == {}
    assert not RegisteredModel.objects.filter(pk=world.iris.pk).exists()


def test_a_group_owner_changes_the_groups_model(world):
    gina = as_user("gina")
    assert gina.patch("registered-models/update", {"name": "prod.ml_team.fraud", "description": "g"}).status_code == 200
    assert gina.post("registered-models/alias", {"name": "prod.ml_team.fraud", "alias": "Champion", "version": "1"}).status_code == 200


def test_an_alias_or_a_number_finds_the_version_of_the_named_model(world):
    """Every model has a version 1, and two models a `Champion`: each read answers from the
    model it names, whatever its name's or the alias's case (the read looks the model up
    first, registry.selectors.registry_version_row)."""
    assert as_user("gina").post("registered-models/alias", {"name": "prod.ml_team.fraud", "alias": "CHAMPION",
                                                             "version": "1"}).status_code == 200
    admin = as_user("admin")
    for name, alias, expected in [(IRIS, "champion", (IRIS, "2")), ("Prod.ML_team.Fraud", "Champion", ("prod.ml_team.fraud", "1"))]:
        version = admin.get("registered-models/alias", {"name": name, "alias": alias}).json()["model_version"]
        assert (version["name"], version["version"]) == expected
        assert admin.get("model-versions/get", {"name": name, "version": "1"}).json()["model_version"]["name"] == expected[0]
    error(admin.get("registered-models/alias", {"name": "staging.ml_team.churn", "alias": "Champion"}), 400,
          "INVALID_PARAMETER_VALUE")


def test_apply_tag_lets_a_non_owner_tag(world):
    tom = as_user("tom")
    assert tom.post("registered-models/set-tag", {"name": IRIS, "key": "reviewed", "value": "yes"}).status_code == 200
    assert tom.post("model-versions/set-tag", {"name": IRIS, "version": "2", "key": "ok", "value": "y"}).status_code == 200


def test_it_refuses_bad_tags(world):
    before = _snapshot()
    for tag_key, value in [("../x", "v"), ("/lead", "v"), ("k" * 251, "v"), ("ok", "v" * 5001), ("bad*key", "v"), ("", "v")]:
        error(as_user("alice").post("registered-models/set-tag", {"name": IRIS, "key": tag_key, "value": value}), 400, "INVALID_PARAMETER_VALUE")
        error(as_user("alice").post("model-versions/set-tag", {"name": IRIS, "version": "1", "key": tag_key, "value": value}), 400, "INVALID_PARAMETER_VALUE")
    assert _snapshot() == before


def test_it_refuses_bad_aliases(world):
    before = _snapshot()
    for alias in ["latest", "LATEST", "v3", "V12", "a/b", "", "a" * 256]:
        error(as_user("alice").post("registered-models/alias", {"name": IRIS, "alias": alias, "version": "1"}), 400, "INVALID_PARAMETER_VALUE")
    assert _snapshot() == before


def test_it_refuses_an_eleventh_alias(world):
    alice = as_user("alice")
    for i in range(9):  # Champion is the first
        assert alice.post("registered-models/alias", {"name": IRIS, "alias": f"a{i}", "version": "1"}).status_code == 200
    before = _snapshot()
    error(alice.post("registered-models/alias", {"name": IRIS, "alias": "eleventh", "version": "1"}), 400, "INVALID_PARAMETER_VALUE")
    assert _snapshot() == before


def test_an_alias_to_a_missing_version_is_404(world):
    error(as_user("alice").post("registered-models/alias", {"name": IRIS, "alias": "x", "version": "7"}), 404, "RESOURCE_DOES_NOT_EXIST")


# --- Writes refused ---------------------------------------------------------------------------
WRITES = [
    ("patch", "registered-models/update", {"name": IRIS, "description": "hacked"}),
    ("post", "registered-models/rename", {"name": IRIS, "new_name": "prod.ml_team.stolen"}),
    ("delete", "registered-models/delete", {"name": IRIS}),
    ("post", "registered-models/set-tag", {"name": IRIS, "key": "k", "value": "v"}),
    ("delete", "registered-models/delete-tag", {"name": IRIS, "key": "task"}),
    ("post", "registered-models/alias", {"name": IRIS, "alias": "Champion", "version": "1"}),
    ("delete", "registered-models/alias", {"name": IRIS, "alias": "Champion"}),
    ("post", "model-versions/create", {"name": IRIS, "source": "models:/prod.ml_team.iris/1"}),
    ("patch", "model-versions/update", {"name": IRIS, "version": "1", "description": "hacked"}),
    ("delete", "model-versions/delete", {"name": IRIS, "version": "1"}),
    ("post", "model-versions/set-tag", {"name": IRIS, "version": "1", "key": "k", "value": "v"}),
    ("delete", "model-versions/delete-tag", {"name": IRIS, "version": "1", "key": "k"}),
]
TAG_WRITES = {"registered-models/set-tag", "registered-models/delete-tag", "model-versions/set-tag", "model-versions/delete-tag"}


def test_a_reader_may_not_change_the_model(world):
    before = _snapshot()
    for method, path, body in WRITES:
        error(getattr(as_user("eve"), method)(path, body), 403, "PERMISSION_DENIED")
    assert _snapshot() == before


def test_apply_tag_is_not_ownership(world):
    before = _snapshot()
    for method, path, body in WRITES:
        if path not in TAG_WRITES:
            error(getattr(as_user("tom"), method)(path, body), 403, "PERMISSION_DENIED")
    assert _snapshot() == before


def test_an_outsider_sees_nothing_to_change(world):
    before = _snapshot()
    for persona in ["oscar", "cody", "uma"]:
        for method, path, body in WRITES:
            error(getattr(as_user(persona), method)(path, body), 404, "RESOURCE_DOES_NOT_EXIST")
    assert _snapshot() == before


def test_rename_needs_create_model_too(world):
    services.grants_change(actor=world.admin, obj=world.ml_team, changes=[{"principal": "alice", "remove": ["CREATE MODEL"]}])
    before = _snapshot()
    assert "CREATE MODEL" in error(
        as_user("alice").post("registered-models/rename", {"name": IRIS, "new_name": "prod.ml_team.x"}), 403, "PERMISSION_DENIED"
    )
    assert _snapshot() == before


def test_transition_stage_is_refused(world):
    error(as_user("alice").post("model-versions/transition-stage", {"name": IRIS, "version": "1", "stage": "Production"}), 400, "INVALID_PARAMETER_VALUE")


# --- Prompts are not models -------------------------------------------------------------------
@pytest.mark.parametrize("flag", ["true", "True"])
def test_prompts_are_hidden_from_model_reads(world, flag):
    prompt = services.model_create(
        actor=world.alice, schema=world.ml_team, name="greeting",
        tags=[{"key": "mlflow.prompt.is_prompt", "value": flag}],
    )
    services.version_create(actor=world.alice, model=prompt, source="x", status=ModelVersion.READY)
    alice = as_user("alice")
    error(alice.get("registered-models/get", {"name": "prod.ml_team.greeting"}), 404, "RESOURCE_DOES_NOT_EXIST")
    error(alice.get("model-versions/get", {"name": "prod.ml_team.greeting", "version": "1"}), 404, "RESOURCE_DOES_NOT_EXIST")
    names = [m["name"] for m in alice.get("registered-models/search").json()["registered_models"]]
    assert "prod.ml_team.greeting" not in names and IRIS in names
    versions = alice.get("model-versions/search", {"filter": "name = 'prod.ml_team.greeting'"}).json()
    assert versions == {"model_versions": []}


def test_every_mlflow_route_needs_credentials(db):
    """Walk every URL pattern of the MLflow API and the artifact proxy: anonymous callers get 401
    UNAUTHENTICATED on every method, before any view code runs."""
    from registry.api.mlflow import urls, urls_artifacts, urls_artifacts_v3

    routes = [("/api/2.0/mlflow/", urls), ("/api/2.0/mlflow-artifacts/", urls_artifacts),
              ("/api/3.0/mlflow/", urls_artifacts_v3)]
    checked = 0
    for prefix, module in routes:
        for pattern in module.urlpatterns:
            route = str(pattern.pattern).lstrip("^").rstrip("$")
            route = route.replace("<str:model_id>", "m-1").replace("<path:key>", "k").replace("<path:path>", "0/x/artifacts/f")
            route = route.replace(".*", "anything")
            for method in ("get", "post", "patch", "delete", "put"):
                client = as_user(None).client
                if method == "get":
                    response = client.get(prefix + route)
                else:
                    response = getattr(client, method)(prefix + route, "{}", content_type="application/json")
                assert response.status_code == 401, (method, prefix + route, response.status_code)
                assert response.json()["error_code"] == "UNAUTHENTICATED"
                checked += 1
    assert checked > 200
