"""MLflow's search grammar through `registered-models/search` and `model-versions/search`:
every key and operator, order_by, paging tokens, limits, and every malformed filter as a 400."""

import re

import pytest
from django.test import Client

from registry import services
from registry.models import ModelVersion
from tests.mlflow_support import as_user, error

P = "prod.ml_team."


@pytest.fixture
def shelf(world):
    """Next to iris (alice) and fraud (ml-admins): alpha (team=Red, `my key`=v), beta (team=red),
    gamma_1 (no team), a prompt — all owned by admin in prod.ml_team."""
    a = world.admin
    alpha = services.model_create(actor=a, schema=world.ml_team, name="alpha",
                                  tags=[{"key": "team", "value": "Red"}, {"key": "my key", "value": "v"}])
    beta = services.model_create(actor=a, schema=world.ml_team, name="Beta", tags=[{"key": "team", "value": "red"}])
    gamma = services.model_create(actor=a, schema=world.ml_team, name="gamma_1")
    services.model_create(actor=a, schema=world.ml_team, name="prompt1",
                          tags=[{"key": "mlflow.prompt.is_prompt", "value": "true"}])
    services.version_tag_set(actor=world.alice, version=world.v1, key="validation", value="approved")
    return {"alpha": alpha, "beta": beta, "gamma": gamma}


def models(user, **params):
    response = as_user(user).get("registered-models/search", params)
    assert response.status_code == 200, response.content
    return [m["name"].removeprefix(P) for m in response.json()["registered_models"]]


def versions(user, **params):
    response = as_user(user).get("model-versions/search", params)
    assert response.status_code == 200, response.content
    return [(v["name"].removeprefix(P), v["version"]) for v in response.json()["model_versions"]]


MODEL_FILTERS = [
    ("", ["alpha", "beta", "fraud", "gamma_1", "iris"]),
    (f"name = '{P}alpha'", ["alpha"]),
    (f"name = '{P.upper()}ALPHA'", ["alpha"]),  # names are stored lowercase; = compares lowercased
    (f"attribute.name = '{P}alpha'", ["alpha"]),
    (f"attributes.name = \"{P}alpha\"", ["alpha"]),
    (f"name != '{P}alpha'", ["beta", "fraud", "gamma_1", "iris"]),
    (f"name LIKE '{P}a%'", ["alpha"]),
    ("name LIKE 'PROD%'", []),  # LIKE is case-sensitive, on SQLite too
    ("name ILIKE 'PROD.ML_TEAM.A%'", ["alpha"]),
    (f"name LIKE '{P}gamm__1'", ["gamma_1"]),  # `_` is one character
    (f"name LIKE '%.ml_team.%a'", ["alpha", "beta"]),
    (f"name IN ('{P}alpha', '{P}beta', '{P}nope')", ["alpha", "beta"]),
    (f"name NOT IN ('{P}alpha', '{P}beta')", ["fraud", "gamma_1", "iris"]),
    ("tags.team = 'Red'", ["alpha"]),
    ("tag.team = 'red'", ["beta"]),
    ("tags.team != 'Red'", ["beta"]),  # only models carrying the tag, as MLflow's SQL store
    ("tags.team LIKE 'R%'", ["alpha"]),
    ("tags.team ILIKE 'r%'", ["alpha", "beta"]),
    ("tags.`my key` = 'v'", ["alpha"]),
    ("tags.task = 'classification'", ["iris"]),
    ("tag.`mlflow.prompt.is_prompt` != 'true'", ["alpha", "beta", "fraud", "gamma_1", "iris"]),
    (f"name = '{P}alpha' AND tags.`mlflow.prompt.is_prompt` != 'true'", ["alpha"]),
    ("name LIKE 'prod%' and tags.team = 'red'", ["beta"]),
    ("name LIKE '%' AND tags.team ILIKE 'RED' AND name != 'x'", ["alpha", "beta"]),
    # A literal start and `%` (the range of names it starts alone), none, or more wildcards after.
    ("name LIKE 'prod.ml%'", ["alpha", "beta", "fraud", "gamma_1", "iris"]),
    ("name LIKE 'Prod.%'", []),
    ("name LIKE 'prod.ml'", []),
    (f"name LIKE '{P}alpha'", ["alpha"]),
]


def test_every_model_key_and_operator(shelf):
    for filter_string, expected in MODEL_FILTERS:
        assert models("tom", filter=filter_string) == expected, filter_string


def _like(pattern, text):
    """SQL LIKE, written here apart from the registry's: `%` any run of characters, `_` one."""
    return re.fullmatch("".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern), text,
                        re.DOTALL) is not None


def test_a_names_like_finds_what_the_pattern_alone_finds(world):
    """A LIKE on names also bounds the name by its literal start (`search.like_range`), and
    `literal%` by that alone: the names found are those the pattern matches, at the bounds too:
    names that sort right before or after the start's texts, byte by byte as UTF-8 (`-` and `.`
    next to each other, characters of two, three and four bytes, U+10FFFF, the last one)."""
    a = world.admin
    edge = services.schema_create(actor=a, catalog=world.prod, name="edge")
    beside = services.schema_create(actor=a, catalog=world.prod, name="edge-b")
    names = ["aa", "ab", "abc", "ab-x", "ab0", "ab\u00e9", "ab\u00e9z", "ab\u00ea", "ab\u4e00", "ab\U0001f600",
             "ab\U0010ffff", "ab\U0010ffffz", "ac", "b"]
    for name in names:
        model = services.model_create(actor=a, schema=edge, name=name)
        services.version_create(actor=a, model=model, source="s3://b/m", status=ModelVersion.READY)
    services.model_create(actor=a, schema=beside, name="ab")
    every = {m["name"] for m in as_user("admin").get("registered-models/search", {"max_results": 1000}).json()[
        "registered_models"]}
    assert {f"prod.edge.{n}" for n in names} <= every
    e = "prod.edge."
    patterns = [f"{e}%", "prod.edge%", "prod.edge-%", f"{e}ab%", f"{e}ab", f"{e}ab_", f"{e}a%c", f"{e}ab\u00e9%",
                f"{e}ab\U0010ffff%", f"{e}ab\U0010ffff", "\U0010ffff%", "%b", f"{e}b%", f"{e}c%", "Prod.%", "prod.edge-b.%"]
    for _ in range(2):  # the second time with the SQL compiled the first
        for pattern in patterns:
            response = as_user("admin").get("registered-models/search", {"filter": f"name LIKE '{pattern}'",
                                                                          "max_results": 1000})
            assert response.status_code == 200, (pattern, response.content)
            found = [m["name"] for m in response.json()["registered_models"]]
            assert found == sorted(n for n in every if _like(pattern, n)), pattern
            response = as_user("admin").get("model-versions/search", {"filter": f"name LIKE '{pattern}'",
                                                                       "order_by": ["name ASC"]})
            assert response.status_code == 200, (pattern, response.content)
            found = [v["name"] for v in response.json()["model_versions"]]  # one version each, on the edge models
            assert found == sorted(f"{e}{n}" for n in names if _like(pattern, f"{e}{n}")), pattern


def test_model_search_is_permission_filtered(shelf):
    assert models("eve") == ["iris"]
    assert models("tom") == ["alpha", "beta", "fraud", "gamma_1", "iris"]  # EXECUTE on the schema
    assert models("gina", filter="name LIKE '%'") == ["fraud"]
    assert models("oscar") == [] and models("cody") == [] and models("uma") == []
    assert models("eve", filter=f"name = '{P}fraud'") == []


def test_model_order_by(shelf):
    assert models("tom", order_by="name DESC") == ["iris", "gamma_1", "fraud", "beta", "alpha"]
    by_creation = models("tom", order_by="timestamp ASC")
    assert by_creation == ["iris", "fraud", "alpha", "beta", "gamma_1"]
    services.model_update(actor=shelf["alpha"].owner_user, model=shelf["beta"], description="touched")
    assert models("tom", order_by="last_updated_timestamp DESC")[0] == "beta"
    response = as_user("tom").client.get(
        "/api/2.0/mlflow/registered-models/search?order_by=timestamp+DESC&order_by=name+ASC",
        **as_user("tom").headers,
    )
    assert [m["name"].removeprefix(P) for m in response.json()["registered_models"]] == list(reversed(by_creation))


def test_model_paging(shelf):
    api = as_user("tom")
    seen, token, pages = [], None, 0
    while True:
        params = {"max_results": 2, **({"page_token": token} if token else {})}
        body = api.get("registered-models/search", params).json()
        seen += [m["name"] for m in body["registered_models"]]
        pages += 1
        token = body.get("next_page_token")
        if not token:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == 5
    assert "next_page_token" not in api.get("registered-models/search", {"max_results": 5}).json()


BAD_MODEL_PARAMS = [
    {"filter": "tags.x IS NULL"},
    {"filter": "name = 'a' OR name = 'b'"},
    {"filter": "name = 'a"},
    {"filter": "name = "},
    {"filter": "name"},
    {"filter": "foo = 'x'"},
    {"filter": "run_id = 'x'"},  # a version key
    {"filter": "name > 'a'"},
    {"filter": "name = 5"},
    {"filter": "name IN 'a'"},
    {"filter": "name IN ('a'"},
    {"filter": "tags.team IN ('a')"},
    {"filter": "(name = 'a')"},
    {"filter": "name = 'a' AND"},
    {"filter": "name = 'a' name = 'b'"},
    {"filter": "tags.`unclosed = 'a'"},
    {"filter": "x" * 20_000},
    {"max_results": "0"},
    {"max_results": "1001"},
    {"max_results": str(10**9)},
    {"max_results": "ten"},
    {"max_results": "-1"},
    {"page_token": "not-a-token"},
    {"page_token": "eyJvZmZzZXQiOiAtMX0="},  # {"offset": -1}
    {"page_token": "e30="},  # {}
    {"order_by": "sideways"},
    {"order_by": "name SIDEWAYS"},
    {"order_by": "version_number"},
    {"order_by": "tags.team"},
]


def test_bad_model_searches_are_400(shelf):
    for params in BAD_MODEL_PARAMS:
        error(as_user("admin").get("registered-models/search", params), 400, "INVALID_PARAMETER_VALUE")


def test_a_filter_parsed_again_is_the_same_and_a_bad_one_fails_every_time():
    # Each filter string is parsed once per process; every caller still gets a list of its own.
    from registry.errors import InvalidInput
    from registry.search import parse_filter

    text = "name = 'a' AND tags.x IN ('1', '2')"
    parse_filter(text).clear()
    assert [(c.kind, c.key, c.op, c.value) for c in parse_filter(text)] == [
        ("attribute", "name", "=", "a"), ("tag", "x", "IN", ["1", "2"])]
    for _ in range(2):
        with pytest.raises(InvalidInput, match="only AND"):
            parse_filter("name = 'a' OR name = 'b'")


VERSION_FILTERS = [
    ("", [("fraud", "1"), ("iris", "2"), ("iris", "1")]),
    (f"name = '{P}iris'", [("iris", "2"), ("iris", "1")]),
    (f"name != '{P}iris'", [("fraud", "1")]),
    ("name LIKE '%iris'", [("iris", "2"), ("iris", "1")]),
    ("name ILIKE '%IRIS'", [("iris", "2"), ("iris", "1")]),
    (f"name IN ('{P}fraud')", [("fraud", "1")]),
    (f"name NOT IN ('{P}fraud')", [("iris", "2"), ("iris", "1")]),
    ("run_id = 'abc'", [("iris", "1")]),
    ("run_id != 'abc'", [("fraud", "1"), ("iris", "2")]),
    ("run_id IN ('abc', 'ghi')", [("fraud", "1"), ("iris", "1")]),
    ("run_id NOT IN ('abc', 'ghi')", [("iris", "2")]),
    ("run_id LIKE 'a%'", [("iris", "1")]),
    ("run_id ILIKE 'A%'", [("iris", "1")]),
    ("source_path = 'runs:/abc/model'", [("iris", "1")]),
    ("source_path != 'runs:/abc/model'", [("fraud", "1"), ("iris", "2")]),
    ("source_path LIKE 'RUNS:%'", []),
    ("source_path ILIKE 'RUNS:/ABC%'", [("iris", "1")]),
    ("version_number = 1", [("fraud", "1"), ("iris", "1")]),
    ("version_number = '2'", [("iris", "2")]),
    ("version_number != 1", [("iris", "2")]),
    ("version_number > 1", [("iris", "2")]),
    ("version_number >= 1", [("fraud", "1"), ("iris", "2"), ("iris", "1")]),
    ("version_number < 2", [("fraud", "1"), ("iris", "1")]),
    ("version_number <= 1", [("fraud", "1"), ("iris", "1")]),
    ("tags.validation = 'approved'", [("iris", "1")]),
    ("tags.validation != 'approved'", []),
    ("tag.validation LIKE 'app%'", [("iris", "1")]),
    ("tags.validation ILIKE 'APP%'", [("iris", "1")]),
    (f"name = '{P}iris' AND version_number > 1", [("iris", "2")]),
    ("name LIKE 'prod.%'", [("fraud", "1"), ("iris", "2"), ("iris", "1")]),
    ("name LIKE 'prod.ml_team.i%' AND version_number < 2", [("iris", "1")]),
]


def test_every_version_key_and_operator(shelf):
    # Default order: last_updated_timestamp DESC, name ASC, version_number DESC; pin it by name.
    for filter_string, expected in VERSION_FILTERS:
        got = versions("admin", filter=filter_string, order_by=["name ASC", "version_number DESC"])
        assert got == expected, filter_string


def test_version_order_and_default(shelf):
    assert versions("admin", order_by="version_number ASC")[0][1] == "1"
    assert versions("admin", order_by=["name DESC", "version_number ASC"]) == [("iris", "1"), ("iris", "2"), ("fraud", "1")]
    services.version_update(actor=shelf["alpha"].owner_user, version=world_v(shelf, "iris", 1), description="x")
    assert versions("admin")[0] == ("iris", "1")  # most recently updated first
    assert versions("admin", order_by="creation_timestamp DESC")[0] == ("fraud", "1")


def world_v(shelf, name, number):
    return ModelVersion.objects.select_related("model").get(model__full_name=P + name, version=number)


def test_version_search_is_permission_filtered(shelf):
    assert versions("eve", order_by="version_number ASC") == [("iris", "1"), ("iris", "2")]
    assert versions("eve", filter=f"name = '{P}fraud'") == []
    assert versions("gina") == [("fraud", "1")]
    assert versions("oscar") == [] and versions("cody") == []


def test_version_paging(shelf):
    api = as_user("admin")
    first = api.get("model-versions/search", {"max_results": 2}).json()
    assert len(first["model_versions"]) == 2 and first["next_page_token"]
    second = api.get("model-versions/search", {"max_results": 2, "page_token": first["next_page_token"]}).json()
    assert len(second["model_versions"]) == 1 and "next_page_token" not in second
    names = {(v["name"], v["version"]) for v in first["model_versions"] + second["model_versions"]}
    assert len(names) == 3


BAD_VERSION_PARAMS = [
    {"filter": "version_number LIKE '1'"},
    {"filter": "version_number = 'one'"},
    {"filter": "version_number = 1.5"},
    {"filter": "version_number IN (1, 2)"},
    {"filter": "source_path IN ('a')"},
    {"filter": "run_id > 'a'"},
    {"filter": "timestamp = 1"},
    {"filter": "tags.x IS NOT NULL"},
    {"filter": "run_id = 'a' OR run_id = 'b'"},
    {"max_results": "200001"},
    {"page_token": "%%%"},
    {"order_by": "timestamp SIDEWAYS"},
    {"order_by": "run_id"},
]


def test_bad_version_searches_are_400(shelf):
    for params in BAD_VERSION_PARAMS:
        error(as_user("admin").get("model-versions/search", params), 400, "INVALID_PARAMETER_VALUE")


# --- runs/search order_by: metrics (latest value), params, tags, as MLflow's SQL store --------
def test_runs_order_by_metrics_params_and_tags(world):
    alice = as_user("alice")

    def new_run(name, start, metrics=(), params=(), tags=()):
        body = {"experiment_id": "0", "run_name": name, "start_time": start}
        run_id = alice.post("runs/create", body).json()["run"]["info"]["run_id"]
        batch = {"run_id": run_id, "metrics": [{"key": k, "value": v, "timestamp": 1, "step": s} for k, v, s in metrics],
                 "params": [{"key": k, "value": v} for k, v in params], "tags": [{"key": k, "value": v} for k, v in tags]}
        response = alice.post("runs/log-batch", batch)
        assert response.status_code == 200, response.content
        return run_id

    ids = {
        # b's best value (0.99) is not its latest (0.5, step 2): the latest one counts
        "a": new_run("a", 10, [("acc", 0.9, 0), ("val loss", 3.0, 0)], [("lr", "0.1")], [("team", "red")]),
        "b": new_run("b", 20, [("acc", 0.99, 1), ("acc", 0.5, 2), ("val loss", 1.0, 0)], [("lr", "0.01")], [("team", "blue")]),
        "c": new_run("c", 30, [("acc", "NaN", 0)]),  # as the client sends NaN (protobuf JSON)
        "d": new_run("d", 40),
    }
    names = {v: k for k, v in ids.items()}

    def order(*order_by, **extra):
        response = alice.post("runs/search", {"experiment_ids": ["0"], "order_by": list(order_by), **extra})
        assert response.status_code == 200, response.content
        body = response.json()
        return [names[r["info"]["run_id"]] for r in body["runs"]], body.get("next_page_token")

    # NaN after every number, runs without the metric last, in both directions; ties newest first
    assert order("metrics.acc DESC")[0] == ["a", "b", "c", "d"]
    assert order("metrics.acc ASC")[0] == ["b", "a", "c", "d"]
    assert order("metric.acc")[0] == ["b", "a", "c", "d"]  # ASC by default
    assert order("metrics.`val loss` ASC")[0] == ["b", "a", "d", "c"]
    assert order("params.lr ASC")[0] == ["b", "a", "d", "c"]  # strings: "0.01" < "0.1"
    assert order("params.lr DESC")[0] == ["a", "b", "d", "c"]
    assert order("tags.team ASC")[0] == ["b", "a", "d", "c"]
    assert order("tag.team desc")[0] == ["a", "b", "d", "c"]
    assert order("params.lr DESC", "start_time ASC")[0] == ["a", "b", "c", "d"]
    assert order("metrics.acc DESC", filter="params.lr != 'x'")[0] == ["a", "b"]
    # paging keeps the order
    first, token = order("metrics.acc DESC", max_results=3)
    second, last = order("metrics.acc DESC", max_results=3, page_token=token)
    assert first + second == ["a", "b", "c", "d"] and last is None

    for bad in (["metrics.acc SIDEWAYS"], ["metrics.acc", "metrics.acc DESC"], ["params.lr", "param.lr"],
                ["metrics.`acc DESC"], ["datasets.x"], ["metrics.acc DESC extra"]):
        error(alice.post("runs/search", {"experiment_ids": ["0"], "order_by": bad}), 400, "INVALID_PARAMETER_VALUE")
    # registered models and versions order by attributes only
    error(alice.get("registered-models/search", {"order_by": "metrics.acc"}), 400, "INVALID_PARAMETER_VALUE")
    error(alice.get("model-versions/search", {"order_by": ["name", "name DESC"]}), 400, "INVALID_PARAMETER_VALUE")


def test_model_search_shows_each_models_newest_version(shelf, world):
    """`latest_versions` of every model on a page: its highest existing version (after the
    newest is deleted, the one before), none for a model without versions; the same as get."""
    services.version_create(actor=world.alice, model=world.iris, source="runs:/x/model")  # iris v3
    services.version_delete(actor=world.alice, version=ModelVersion.objects.get(model=world.iris, version=3))
    v2 = ModelVersion.objects.get(model=world.iris, version=2)
    for key in ("zeta", "Alpha", "beta"):  # the newest version's own tags, sorted as MLflow sorts them
        services.version_tag_set(actor=world.alice, version=v2, key=key, value=f"{key} value")
    # Its aliases, sorted, and no other version's (they are read off the model's alias list).
    for alias, number in (("zz", "2"), ("Alpha2", "2"), ("older", "1"), ("Before", "1")):
        services.alias_set(actor=world.alice, model=world.iris, alias=alias, version=number)
    response = as_user("admin").get("registered-models/search", {"max_results": 100})
    by_name = {m["name"]: m for m in response.json()["registered_models"]}
    assert [v["version"] for v in by_name[P + "iris"]["latest_versions"]] == ["2"]
    assert by_name[P + "iris"]["latest_versions"][0]["aliases"] == ["Alpha2", "Champion", "zz"]
    own = as_user("admin").get("model-versions/get", {"name": P + "iris", "version": "2"}).json()["model_version"]
    assert by_name[P + "iris"]["latest_versions"][0] == own
    assert by_name[P + "iris"]["latest_versions"][0]["tags"] == [
        {"key": k, "value": f"{k} value"} for k in ("Alpha", "beta", "zeta")
    ]
    assert by_name[P + "alpha"]["latest_versions"] == []
    for name, body in by_name.items():
        assert as_user("admin").get("registered-models/get", {"name": name}).json()["registered_model"] == body


def test_version_search_by_one_name_answers_as_the_general_search(shelf, world):
    """`name = '<model>'` (the stock client's usual call): same rows, order, paging and
    permission filter as any other search."""
    def raw(user, **params):
        response = as_user(user).get("model-versions/search", params)
        assert response.status_code == 200, response.content
        return response.json()

    services.version_create(actor=world.alice, model=world.iris, source="runs:/x/model")
    fast = raw("eve", filter=f"name = '{P}IRIS'")["model_versions"]
    general = raw("eve", filter=f"name IN ('{P}iris')")["model_versions"]
    assert fast == general and [v["version"] for v in fast] == ["3", "2", "1"]
    first = raw("eve", filter=f"name = '{P}iris'", max_results=2)
    assert [v["version"] for v in first["model_versions"]] == ["3", "2"]
    rest = raw("eve", filter=f"name = '{P}iris'", max_results=2, page_token=first["next_page_token"])
    assert [v["version"] for v in rest["model_versions"]] == ["1"] and "next_page_token" not in rest
    assert raw("oscar", filter=f"name = '{P}iris'")["model_versions"] == []
    assert raw("admin", filter=f"name = '{P}prompt1'")["model_versions"] == []


# --- Searches compiled once per shape (search.compiled_search) ---------------------------------
def test_compiled_searches_answer_as_the_orm_search(shelf, world):
    """Every filter above, in two orders, first and later pages, for users who see everything,
    part and nothing: the SQL compiled once per shape gives the rows `search.search` gives, each
    call with its own values (filters of one shape follow each other in the lists above)."""
    from registry import db, search, selectors

    statements = _compiled_as_orm([world.admin, world.tom, world.eve, world.oscar])
    assert statements and _compiled_as_orm([world.cody, world.uma]) == statements  # reused, not compiled again


def _compiled_as_orm(users):
    """Every filter above, in two orders, first and later pages, compiled against the ORM search;
    the keys of the search statements compiled."""
    from registry import db, search, selectors

    tables = [
        ("mlflow-models", selectors.registry_models, search.MODEL_GRAMMAR, MODEL_FILTERS, [None, ["name DESC"]]),
        ("mlflow-versions", selectors.registry_versions, search.VERSION_GRAMMAR, VERSION_FILTERS,
         [None, ["version_number ASC", "name DESC"]]),
    ]
    for user in users:
        for key, base, grammar, filters, orders in tables:
            for filter_string, _ in filters:
                for order in orders:
                    for size, token in ((100, None), (1, None), (1, search.encode_token(1))):
                        given = dict(filter_string=filter_string, order=order, page_token=token, size=size)
                        compiled = search.compiled_search((key,), base, grammar, user=user, **given)
                        assert compiled == search.search(base(user), grammar, **given), (user, filter_string, given)
    return {k for k in db._SQL_CACHE if "search" in k}


@pytest.mark.parametrize("most", [1000, 0])
def test_a_tag_value_few_hold_is_read_by_id_with_the_same_answer(shelf, world, monkeypatch, most):
    """On PostgreSQL a `tags.k = 'v'` clause whose value few objects hold reads them by id from
    the tag's rows (`search.held_by_few`), else tests each object walked against a hash of them:
    with the tables analyzed (each value here is held by one or two of the models and versions)
    and with no value counted as few (`FEW_TAGGED_MAX` 0), every filter above answers as the ORM
    search, for users who see everything, part and nothing. On SQLite, the EXISTS as before."""
    from django.db import connection
    from registry import search

    monkeypatch.setattr(search, "_few_tagged", {})
    monkeypatch.setattr(search, "FEW_TAGGED_MAX", most)
    team_red = search.Clause("tag", "team", "=", "red")
    if connection.vendor != "postgresql":
        assert search.held_by_few(search.MODEL_GRAMMAR, team_red) is None  # EXISTS, as before
        return
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE registry_registeredmodel, registry_modelversion")
    assert search.held_by_few(search.MODEL_GRAMMAR, team_red) is bool(most)
    statements = []

    def note(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(note):
        _compiled_as_orm([world.admin, world.tom, world.eve, world.oscar])
    read_by_id = [sql for sql in statements if "= ANY(ARRAY(SELECT" in sql]
    tested = [sql for sql in statements if ") IS TRUE" in sql]
    assert bool(read_by_id) is bool(most) and (most or tested)  # with 1000 too: a value on most versions


def test_a_tag_value_many_hold_is_not_read_by_id(shelf, world, monkeypatch):
    """A value held by more than a quarter of the objects (PostgreSQL's estimate of the table's
    rows) is tested on each object walked: reading several hundred objects by id cost more than
    walking them (943 of 1,048 models: 1.20 against 0.84 ms, the statement)."""
    from django.db import connection

    from registry import search

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's estimate of a table's rows")
    monkeypatch.setattr(search, "_few_tagged", {})
    for n in range(6):
        services.model_create(actor=world.admin, schema=world.ml_team, name=f"tagged_{n}",
                              tags=[{"key": "tier", "value": "gold" if n < 1 else "bronze"}])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE registry_registeredmodel")
    # Counted only after a search whose statement checked the caller's credential.
    refused = Client().get("/api/2.0/mlflow/registered-models/search", {"filter": "tags.tier = 'gold'"},
                           HTTP_AUTHORIZATION="Bearer not-a-token")
    assert refused.status_code == 401 and search._few_tagged == {}
    assert models("tom", filter="tags.tier = 'gold'") == ["tagged_0"]  # walked: not counted yet
    assert search._few_tagged and search.held_by_few(search.MODEL_GRAMMAR, search.Clause("tag", "tier", "=", "gold"))
    assert search.held_by_few(search.MODEL_GRAMMAR, search.Clause("tag", "tier", "=", "gold")) is True
    assert search.held_by_few(search.MODEL_GRAMMAR, search.Clause("tag", "tier", "=", "bronze")) is False
    assert models("admin", filter="tags.tier = 'bronze'") == [f"tagged_{n}" for n in range(1, 6)]
    assert models("tom", filter="tags.tier = 'gold'") == ["tagged_0"]


def test_compiled_search_sees_a_revoke_at_once(shelf, world):
    for _ in range(8):  # past the generic plan on PostgreSQL
        assert models("eve", filter="tags.task = 'classification'") == ["iris"]
        assert versions("eve", filter=f"name = '{P}iris'") == [("iris", "2"), ("iris", "1")]
    services.grants_change(actor=world.alice, obj=world.iris, changes=[{"principal": "eve", "remove": ["EXECUTE"]}])
    assert models("eve", filter="tags.task = 'classification'") == []
    assert versions("eve", filter=f"name = '{P}iris'") == []


def test_compiled_statements_are_bounded(world, monkeypatch):
    """Shapes come from clients (every tag key is one): the kept statements are the most
    recently used ones, up to a bound, and an evicted one is compiled again when asked for."""
    from registry import db

    monkeypatch.setattr(db, "_SQL_CACHE_SIZE", 5)
    for n in range(12):
        assert models("admin", filter=f"tags.key{n} = 'x'") == []
    assert len(db._SQL_CACHE) <= 5
    assert models("tom", filter="tags.task = 'classification'") == ["iris"]
    assert models("tom", filter="tags.key0 = 'x'") == []
