"""A request with a Bearer token on PostgreSQL: the token is checked by the statement of its
first read (`permissions.UncheckedCaller`, `db.compiled_with_caller`), one round trip fewer —
a GET's only read, or the read of the object a write changes. The answers are those of checking
the token first: a bad token is a 401 whatever else the request got wrong and no write happens,
a superuser sees what he always saw, a deleted token or a deactivated user counts at the very
next request. On SQLite (no LATERAL) the token is checked on its own, as before; the answers are
the same."""

import base64

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from registry import permissions, selectors, services
from registry.api.auth import BearerTokenAuthentication
from registry.errors import NotFound

from .plan_support import scan_runs

IRIS = "prod.ml_team.iris"
MLFLOW = "/api/2.0/mlflow/"
UC = "/api/2.1/unity-catalog/"
FOLDED = connection.vendor == "postgresql"

# (path, params, what the answer holds): single-object reads, MLflow and Unity Catalog.
READS = [
    (MLFLOW + "registered-models/get", {"name": IRIS}, lambda b: b["registered_model"]["name"] == IRIS),
    (MLFLOW + "model-versions/get", {"name": IRIS, "version": "1"}, lambda b: b["model_version"]["version"] == "1"),
    (MLFLOW + "registered-models/alias", {"name": IRIS, "alias": "champion"},
     lambda b: b["model_version"]["name"] == IRIS),
    (UC + "models/" + IRIS, {}, lambda b: b["full_name"] == IRIS),
]


def _client(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.get_or_create(user=user)[0].key}")
    return client


def _get(client, path, params):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path, params)
    return response, len(ctx.captured_queries)


@pytest.mark.parametrize("path,params,holds", READS)
def test_a_read_checks_its_token_in_its_own_statement(world, path, params, holds):
    """eve (EXECUTE on iris): one query on PostgreSQL, two on SQLite; the same answer as with
    the token checked first (HTTP basic takes that path everywhere)."""
    client = _client(world.eve)
    client.get(path, params)  # what a first request does once (SQLite: the connection's set-up)
    response, queries = _get(client, path, params)
    assert response.status_code == 200, response.content
    assert holds(response.json())
    basic = APIClient()
    basic.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"eve:eve-pass-123").decode())
    assert basic.get(path, params).json() == response.json()
    if path.startswith(MLFLOW):
        assert queries == (1 if FOLDED else 2)


@pytest.mark.parametrize("path,params,holds", READS)
def test_a_superuser_reads_what_he_holds_no_grant_on(world, path, params, holds):
    """The statement is compiled for an ordinary user; admin owns nothing of iris, so his
    answer is asked again as a superuser's."""
    response, _ = _get(_client(world.admin), path, params)
    assert response.status_code == 200, response.content
    assert holds(response.json())


@pytest.mark.parametrize("path,params,holds", READS)
def test_a_reader_without_the_privilege_gets_not_found(world, path, params, holds):
    response, _ = _get(_client(world.oscar), path, params)
    assert response.status_code in (403, 404), response.content


BAD_TOKEN_READS = [
    *[(path, params) for path, params, _ in READS],
    (MLFLOW + "model-versions/get", {"name": IRIS, "version": "not-a-number"}),  # 400 with a good token
    (MLFLOW + "registered-models/get", {"name": "prod.ml_team.nothing"}),  # 404 with a good token
    (MLFLOW + "registered-models/get", {}),  # missing name
    (MLFLOW + "registered-models/search", {}),
    (MLFLOW + "no-such-endpoint", {}),
]


@pytest.mark.parametrize("path,params", BAD_TOKEN_READS)
def test_a_bad_token_is_a_401_whatever_else_is_wrong(world, path, params):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer " + "0" * 40)
    response = client.get(path, params)
    assert response.status_code == 401, (path, response.status_code, response.content)
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error_code"] in ("UNAUTHENTICATED", "PERMISSION_DENIED")


def test_a_deleted_token_or_a_deactivated_user_counts_at_the_next_request(world):
    path, params, _ = READS[2]
    client = _client(world.eve)
    for _ in range(8):  # past psycopg's preparation and PostgreSQL's five custom plans
        assert client.get(path, params).status_code == 200
    world.eve.is_active = False
    world.eve.save()
    assert client.get(path, params).status_code == 401
    world.eve.is_active = True
    world.eve.save()
    assert client.get(path, params).status_code == 200
    Token.objects.filter(user=world.eve).delete()
    assert client.get(path, params).status_code == 401


def test_two_callers_sharing_the_statement_get_their_own_answers(world):
    eve, oscar = _client(world.eve), _client(world.oscar)
    path, params, _ = READS[0]
    for _ in range(8):
        assert eve.get(path, params).status_code == 200
        assert oscar.get(path, params).status_code == 404
    services.grants_change(actor=world.alice, obj=world.iris, changes=[{"principal": "eve", "remove": ["EXECUTE"]}])
    assert eve.get(path, params).status_code == 404


def _unchecked(user_or_key):
    key = user_or_key if isinstance(user_or_key, str) else Token.objects.get_or_create(user=user_or_key)[0].key
    auth = BearerTokenAuthentication()
    return permissions.UncheckedCaller(lambda: auth.authenticate_credentials(key)[0], auth._query(key), auth._user_from)


@pytest.mark.parametrize("who", ["eve", "alice", "admin"])
def test_an_unchecked_caller_gets_his_own_capabilities(world, who):
    """`visible_one` annotates capabilities: a superuser's come from his own statement."""
    user = getattr(world, who)
    caller = _unchecked(user)
    got = selectors.model_get(caller, IRIS)
    assert caller.checked and caller.pk == user.pk and caller.is_superuser == user.is_superuser
    assert permissions.capabilities(caller, got) == permissions.capabilities(user, selectors.model_get(user, IRIS))


def test_an_unchecked_caller_with_a_bad_token_reads_nothing(world):
    from rest_framework.exceptions import AuthenticationFailed

    caller = _unchecked("f" * 40)
    with pytest.raises(AuthenticationFailed):
        selectors.registry_model_row(caller, IRIS)
    with CaptureQueriesContext(connection) as ctx, pytest.raises(AuthenticationFailed):
        caller.resolve()  # the failure is kept: no second query
    assert len(ctx.captured_queries) == (0 if FOLDED else 1)
    assert not caller.checked


def test_an_unchecked_caller_checks_his_token_before_anything_else(world):
    caller = _unchecked(world.oscar)
    with pytest.raises(NotFound):
        selectors.registry_model_row(caller, IRIS)
    assert caller.checked and caller.username == "oscar"
    caller = _unchecked(world.eve)
    assert caller.username == "eve" and caller.checked  # any attribute checks it on its own
    assert selectors.registry_model_row(caller, IRIS)["full_name"] == IRIS


SEARCHES = [
    ("registered-models/search", {"max_results": 2}),
    ("registered-models/search", {"max_results": 1, "order_by": "name DESC"}),
    ("registered-models/search", {"filter": "name LIKE 'prod.%'", "max_results": 1}),
    ("model-versions/search", {"filter": f"name = '{IRIS}'", "max_results": 1}),
    ("model-versions/search", {"filter": "name LIKE '%iris%'", "max_results": 1, "order_by": "version_number ASC"}),
]


@pytest.mark.parametrize("path,params", SEARCHES)
@pytest.mark.parametrize("who", ["tom", "alice", "admin"])
def test_a_search_checks_its_token_in_its_own_statement_and_keeps_its_order(world, path, params, who):
    """Every page, in order, as HTTP basic gets it (the token's statement numbers the rows to
    keep the search's order); one statement per page on PostgreSQL for a user who is not a
    superuser."""
    for name in ("iris_b", "iris_a"):  # tom reads every model of the schema, alice owns these
        model = services.model_create(actor=world.alice, schema=world.ml_team, name=name, description=name)
        services.version_create(actor=world.alice, model=model, source="runs:/x/model")
    user = getattr(world, who)
    token, basic = _client(user), APIClient()
    basic.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{who}:{who}-pass-123".encode()).decode())
    token.get(MLFLOW + path, params)  # the connection's first-request set-up
    pages, page_params = 0, dict(params)
    while True:
        got, queries = _get(token, MLFLOW + path, page_params)
        assert got.status_code == 200, got.content
        assert got.json() == basic.get(MLFLOW + path, page_params).json()
        if FOLDED and who != "admin":
            assert queries == 1
        pages += 1
        if not got.json().get("next_page_token"):
            break
        page_params["page_token"] = got.json()["next_page_token"]
    assert pages >= 2


@pytest.mark.skipif(not FOLDED, reason="the token is checked in the read's statement on PostgreSQL only")
@pytest.mark.parametrize("who", ["tom", "gina"])
def test_a_search_reads_its_callers_row_once_whatever_it_finds(world, who):
    """The token's columns (his snapshot, whether he is in a group) are computed once per
    statement, not once per row found, and sent with the first row only: the scan of the
    memberships that says whether he is in a group runs once (it ran for every model of the page
    when PostgreSQL pulled the token's query up into the join). gina is in a group (EXECUTE on
    the schema through it): her rights lists read her groups once more."""
    for name in ("iris_b", "iris_a"):
        services.model_create(actor=world.alice, schema=world.ml_team, name=name)
    services.grants_change(actor=world.admin, obj=world.ml_team,
                           changes=[{"principal": "ml-admins", "add": ["EXECUTE"]}])
    token = _client(getattr(world, who))
    token.get(MLFLOW + "registered-models/search", {"max_results": 10})  # the guess of his groups settles
    got, executed = _executed(token, MLFLOW + "registered-models/search", {"max_results": 10})
    assert len(got.json()["registered_models"]) == 4
    ((sql, params),) = executed
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0][0]["Plan"]
    assert scan_runs(plan, "auth_user_groups") == ([1] if who == "tom" else [1, 1])
    with connection.cursor() as cursor:  # and they come on the first row only
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    assert len(rows) == 4 and rows[0][0] == getattr(world, who).pk  # his id, the first column
    assert all(row[0] is None for row in rows[1:])


@pytest.mark.parametrize("path,params,key", [
    ("registered-models/search", {"filter": "name = 'prod.ml_team.nothing'"}, "registered_models"),
    ("model-versions/search", {"filter": "name = 'prod.ml_team.nothing'"}, "model_versions"),
    ("model-versions/search", {"filter": "name LIKE '%nothing%'", "order_by": "version_number ASC"}, "model_versions"),
])
def test_a_search_that_finds_nothing_answers_nothing_from_its_own_statement(world, path, params, key):
    """The token's statement still has its row when the search finds none (a LEFT JOIN's row
    of NULLs): that row is no result."""
    token = _client(world.tom)
    token.get(MLFLOW + path, params)  # the connection's first-request set-up
    got, queries = _get(token, MLFLOW + path, params)
    assert got.status_code == 200, got.content
    assert got.json().get(key, []) == []
    if FOLDED:
        assert queries == 1


def test_a_search_with_a_bad_token_is_a_401(world):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer " + "1" * 40)
    for path, params in SEARCHES:
        assert client.get(MLFLOW + path, params).status_code == 401


# --- Writes: the first read of the object a write changes checks the token ------------------
def _fingerprint():
    """Every row of the registry's tables and the users', as text: what a write could change."""
    from django.apps import apps
    from django.contrib.auth import get_user_model
    from django.core import serializers

    models = [*apps.get_app_config("registry").get_models(), get_user_model(), Token]
    return {m._meta.label: serializers.serialize("json", m.objects.order_by("pk")) for m in models}


def _writes(world):
    """(method, path, body) of the MLflow API's writes (paths under it) and Unity Catalog's, each
    one that alice's token may make, in an order in which each succeeds."""
    alice = _client(world.alice)
    experiment = alice.post(MLFLOW + "experiments/create", {"name": "token-writes"}, format="json").json()
    run = alice.post(MLFLOW + "runs/create", {"experiment_id": experiment["experiment_id"]}, format="json").json()
    run_id = run["run"]["info"]["run_id"]
    return [
        ("post", "registered-models/create", {"name": "prod.ml_team.fresh"}),
        ("patch", "registered-models/update", {"name": IRIS, "description": "changed"}),
        ("post", "registered-models/set-tag", {"name": IRIS, "key": "task", "value": "changed"}),
        ("delete", "registered-models/delete-tag", {"name": IRIS, "key": "task"}),
        ("post", "registered-models/alias", {"name": IRIS, "alias": "champion", "version": "1"}),
        ("post", "registered-models/alias", {"name": IRIS, "alias": "fresh", "version": "1"}),
        ("delete", "registered-models/alias", {"name": IRIS, "alias": "champion"}),
        ("patch", "model-versions/update", {"name": IRIS, "version": "1", "description": "changed"}),
        ("post", "model-versions/set-tag", {"name": IRIS, "version": "1", "key": "k", "value": "v"}),
        ("delete", "model-versions/delete", {"name": IRIS, "version": "1"}),
        ("post", "experiments/set-experiment-tag", {"experiment_id": experiment["experiment_id"], "key": "k",
                                                     "value": "v"}),
        ("post", "runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.1"}),
        ("post", "runs/set-tag", {"run_id": run_id, "key": "k", "value": "v"}),
        ("post", "runs/update", {"run_id": run_id, "status": "FINISHED"}),
        ("post", "runs/delete", {"run_id": run_id}),
        ("post", "registered-models/rename", {"name": IRIS, "new_name": "prod.ml_team.iris2"}),
        # Unity Catalog's writes
        ("post", UC + "models", {"catalog_name": "prod", "schema_name": "ml_team", "name": "uc_fresh"}),
        ("patch", UC + "models/prod.ml_team.iris2", {"comment": "changed"}),
        ("patch", UC + "models/prod.ml_team.iris2/versions/2", {"comment": "changed"}),
        ("patch", UC + "permissions/registered_model/prod.ml_team.iris2",
         {"changes": [{"principal": "tom", "add": ["EXECUTE"]}]}),
        ("delete", UC + "models/prod.ml_team.iris2", {}),
    ]


def test_a_write_with_a_bad_token_or_an_inactive_user_is_a_401_and_changes_nothing(world):
    writes = [(method, path if path.startswith(UC) else MLFLOW + path, body) for method, path, body in _writes(world)]
    inactive = _client(world.gina)
    world.gina.is_active = False
    world.gina.save()
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer " + "2" * 40)
    before = _fingerprint()
    for method, path, body in writes:
        for client in (bad, inactive):
            response = getattr(client, method)(path, body, format="json")
            assert response.status_code == 401, (path, response.status_code, response.content)
    assert _fingerprint() == before
    for method, path, body in writes:  # each would have changed something with a good token
        response = getattr(_client(world.alice), method)(path, body, format="json")
        assert response.status_code == 200, (path, response.content)
    assert _fingerprint() != before


@pytest.mark.parametrize("method,path,body", [
    ("post", "registered-models/alias", {"name": IRIS, "alias": "champion", "version": "1"}),
    ("post", "registered-models/set-tag", {"name": IRIS, "key": "task", "value": "changed"}),
    ("patch", "registered-models/update", {"name": IRIS, "description": "changed"}),
])
def test_a_write_checks_its_token_in_its_first_read(world, method, path, body):
    """One statement fewer than HTTP basic on PostgreSQL (which finds the user on its own, as the
    token's query does on SQLite); the same answer and the same change."""
    token, basic = _client(world.alice), APIClient()
    basic.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"alice:alice-pass-123").decode())
    counts = {}
    for name, client in (("token", token), ("basic", basic)):
        getattr(client, method)(MLFLOW + path, body, format="json")  # the connection's first-request set-up
        with CaptureQueriesContext(connection) as ctx:
            response = getattr(client, method)(MLFLOW + path, body, format="json")
        assert response.status_code == 200, response.content
        counts[name] = len(ctx.captured_queries)
    assert counts["token"] == counts["basic"] - (1 if FOLDED else 0)


# --- A caller in no group: the rights lists without his groups' branches ---------------------
FRAUD = "prod.ml_team.fraud"  # owned by the group ml-admins, which may use prod.ml_team


def _executed(client, path, params):
    """The response and (SQL, parameters) of each statement it ran."""
    executed = []

    def note(execute, sql, params, many, context):
        executed.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(note):
        response = client.get(path, params)
    return response, executed


def _statements(client, path, params):
    """The response and the SQL of each statement it ran."""
    response, executed = _executed(client, path, params)
    return response, [sql for sql, _ in executed]


def _without_groups(sql):
    return "owner_group_id" not in sql and "auth_user_groups" in sql  # his groups asked, not read


@pytest.mark.skipif(not FOLDED, reason="the token is checked in the read's statement on PostgreSQL only")
def test_a_caller_in_no_group_is_read_without_his_groups_branches(world):
    """eve is in no group: after her first read (all branches, which says so), her reads leave
    the group branches out, one statement each, with the answers HTTP basic gets."""
    client = _client(world.eve)
    basic = APIClient()
    basic.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"eve:eve-pass-123").decode())
    for path, params in [(MLFLOW + "registered-models/get", {"name": IRIS}),
                         (MLFLOW + "registered-models/search", {}),
                         (MLFLOW + "model-versions/search", {"filter": f"name = '{IRIS}'"})]:
        client.get(path, params)
        response, statements = _statements(client, path, params)
        assert response.status_code == 200, response.content
        assert len(statements) == 1 and _without_groups(statements[0]), statements
        assert response.json() == basic.get(path, params).json()


@pytest.mark.skipif(not FOLDED, reason="the token is checked in the read's statement on PostgreSQL only")
def test_joining_or_leaving_a_group_counts_at_the_next_read(world):
    """uma (USE CATALOG on prod, nothing on ml_team, no group) is read without group branches;
    once she joins ml-admins, which owns fraud, her next read finds fraud (that statement says
    she is in a group now: the read is asked again with them), and the ones after read with
    them; once she leaves, the next read no longer finds it."""
    client = _client(world.uma)
    path, params = MLFLOW + "registered-models/get", {"name": FRAUD}
    search = (MLFLOW + "registered-models/search", {"filter": "name LIKE 'prod.%'"})
    for _ in range(3):
        response, statements = _statements(client, path, params)
        assert response.status_code == 404
    assert _without_groups(statements[0])
    assert client.get(*search).json().get("registered_models", []) == []

    world.uma.groups.add(world.ml_admins)
    response, statements = _statements(client, path, params)
    assert response.status_code == 200, response.content
    assert response.json()["registered_model"]["name"] == FRAUD
    assert len(statements) == 2 and _without_groups(statements[0]) and not _without_groups(statements[1])
    response, statements = _statements(client, path, params)
    assert response.status_code == 200 and len(statements) == 1 and not _without_groups(statements[0])
    assert [m["name"] for m in client.get(*search).json()["registered_models"]] == [FRAUD]

    world.uma.groups.remove(world.ml_admins)
    response, statements = _statements(client, path, params)  # read with them: it says she left
    assert response.status_code == 404 and not _without_groups(statements[0])
    response, statements = _statements(client, *search)
    assert response.status_code == 200 and response.json().get("registered_models", []) == []
    assert len(statements) == 1 and _without_groups(statements[0])


@pytest.mark.skipif(not FOLDED, reason="the token is checked in the read's statement on PostgreSQL only")
def test_a_caller_in_a_group_reads_with_its_branches_in_one_statement(world):
    """gina is in ml-admins, which owns fraud: every read of hers keeps the group branches and
    costs one statement (she is never read without them and then asked again)."""
    client = _client(world.gina)
    path, params = MLFLOW + "registered-models/get", {"name": FRAUD}
    for _ in range(3):
        response, statements = _statements(client, path, params)
        assert response.status_code == 200, response.content
        assert len(statements) == 1 and not _without_groups(statements[0])
