"""Lists are filtered in the database: the number of queries does not grow with the rows."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry import services
from registry.models import ModelVersion

from .conftest import SIGNATURE
from .test_api_uc_support import uc  # noqa: F401

# On PostgreSQL a Bearer token is checked by the first single-object read's own statement
# (`permissions.UncheckedCaller`): one query fewer for a caller who is not a superuser (a
# superuser's answer is asked again as his own).
FOLDED = connection.vendor == "postgresql"


def _queries(client, path, params=None):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path, params)
    assert response.status_code == 200, response.content
    return len(ctx.captured_queries), response.json()


def _grow_models(world, count):
    for i in range(count):
        model = services.model_create(actor=world.alice, schema=world.ml_team, name=f"m{i:02d}", description="d")
        version = services.version_create(actor=world.alice, model=model, source="runs:/x/model", signature=SIGNATURE,
                                          status=ModelVersion.READY)
        services.alias_set(actor=world.alice, model=model, alias="Champion", version=version.version)


def _grow_catalogs(world, count):
    for i in range(count):
        catalog = services.catalog_create(actor=world.admin, name=f"c{i:02d}")
        services.grants_change(actor=world.admin, obj=catalog, changes=[{"principal": "alice", "add": ["USE CATALOG"]}])


@pytest.mark.parametrize("who", ["alice", "admin"])
def test_listing_models_costs_the_same_for_1_or_30_models(uc, world, who):
    client = uc(who)
    client.get("catalogs")  # the token row exists from here on
    # 1 token + user · 2 the schema with the caller's capabilities on it · 3 the visible models
    # (owners, creator, schema, catalog joined) · 4 their aliases with the versions they point to.
    # 1 and 2 are one statement for alice on PostgreSQL.
    few, body = _queries(client, "models", {"catalog_name": "prod", "schema_name": "ml_team"})
    _grow_models(world, 30)
    many, body = _queries(client, "models", {"catalog_name": "prod", "schema_name": "ml_team"})
    assert len(body["registered_models"]) >= 31
    assert all(m["aliases"] for m in body["registered_models"] if m["name"].startswith("m"))
    assert many == few == (3 if FOLDED and who == "alice" else 4)
    all_models, _ = _queries(client, "models")
    assert all_models == 3  # no schema lookup


@pytest.mark.parametrize("who", ["alice", "admin"])
def test_listing_catalogs_costs_the_same_for_1_or_30_catalogs(uc, world, who):
    client = uc(who)
    client.get("catalogs")
    few, _ = _queries(client, "catalogs")
    _grow_catalogs(world, 30)
    many, body = _queries(client, "catalogs")
    assert len(body["catalogs"]) >= 31
    assert many == few == 2  # 1 token + user · 2 the visible catalogs with owners and creator


def test_listing_versions_costs_the_same_for_2_or_30_versions(uc, world):
    client = uc("eve")
    client.get("catalogs")
    few, _ = _queries(client, "models/prod.ml_team.iris/versions")
    for _ in range(28):
        services.version_create(actor=world.alice, model=world.iris, source="runs:/x/model", signature=SIGNATURE)
    many, body = _queries(client, "models/prod.ml_team.iris/versions")
    assert len(body["model_versions"]) == 30
    # 1 token + user · 2 the model with eve's capabilities on it (1 and 2 one statement on
    # PostgreSQL) · 3 versions · 4 their aliases · 5 their tags
    assert many == few == (4 if FOLDED else 5)


@pytest.mark.parametrize("auth", ["basic", "bearer"])
def test_mlflow_reads_cost_the_same_for_1_or_30_models(world, auth):
    """The MLflow API's reads: one query for the caller (HTTP basic: the user; Bearer: the token
    and user), then the model or version rows (a model with its newest version, creators, tags
    and aliases) in one query, however many rows, tags and aliases. With a token on
    PostgreSQL, each is one statement (the token checked in it)."""
    from rest_framework.authtoken.models import Token

    from .mlflow_support import as_user

    api = as_user("alice")
    if auth == "bearer":
        api.headers["HTTP_AUTHORIZATION"] = f"Bearer {Token.objects.create(user=world.alice).key}"
    api.get("registered-models/search")  # the connection's first-request set-up happens here
    name = "prod.ml_team.iris"
    one = 1 if FOLDED and auth == "bearer" else 2
    reads = {
        "registered-models/get": ({"name": name}, one),
        "registered-models/alias": ({"name": name, "alias": "champion"}, one),
        "model-versions/get": ({"name": name, "version": "1"}, one),
        "model-versions/search": ({"filter": f"name = '{name}'"}, one),
        "registered-models/search": ({"max_results": 100}, one),
        "registered-models/get-latest-versions": ({"name": name}, one),
    }

    def counts():
        out = {}
        for path, (params, _) in reads.items():
            with CaptureQueriesContext(connection) as ctx:
                response = api.get(path, params)
            assert response.status_code == 200, (path, response.content)
            out[path] = len(ctx.captured_queries)
        return out

    few = counts()
    _grow_models(world, 30)
    for i in range(5):
        services.model_tag_set(actor=world.alice, model=world.iris, key=f"k{i}", value="v")
        services.version_tag_set(actor=world.alice, version=world.v1, key=f"k{i}", value="v")
    assert counts() == few == {path: n for path, (_, n) in reads.items()}
