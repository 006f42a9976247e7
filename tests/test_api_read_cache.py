"""`api.read_cache`: an MLflow read repeated with the same token, path and query is answered
from memory while PostgreSQL's snapshot is still the one it was computed in; once anything has
committed, it is computed again: a revoke, a group membership taken away, a moved alias, a
deleted token or a deactivated user counts at the very next request. The writes here commit for real
(`transaction=True`), as they do on a server. On SQLite nothing is kept."""

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.response import Response
from rest_framework.test import APIClient

from registry import services
from registry.api import read_cache

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL names its snapshots; SQLite does not"),
]

MLFLOW = "/api/2.0/mlflow/"
IRIS = "prod.ml_team.iris"
BY_ALIAS = (MLFLOW + "registered-models/alias", {"name": IRIS, "alias": "champion"})
GET_IRIS = (MLFLOW + "registered-models/get", {"name": IRIS})


@pytest.fixture(autouse=True)
def _empty_cache():
    read_cache.store.clear()
    yield
    read_cache.store.clear()


def _client(user, **headers):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.get_or_create(user=user)[0].key}", **headers)
    return client


def _get(client, read):
    path, params = read
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path, params)
    return response, len(ctx.captured_queries)


def _hit(response):
    """A kept answer is sent by the middleware as a plain HttpResponse, before any view; a
    computed one is the view's DRF Response."""
    return not isinstance(response, Response)


def _warm(client, read, seconds=10):
    """Asked (the first time, the read checks the token and reads the snapshot itself, and the
    answer is kept), then again until the answer comes from memory — the probe alone, one
    statement. Any commit in between, in any database of the server (a parallel test run's),
    changes the snapshot and has it computed again: the probe and the read, or the read alone
    when this process has seen a newer snapshot already."""
    first, _ = _get(client, read)
    assert first.status_code == 200, first.content
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        response, queries = _get(client, read)
        assert response.status_code == 200, response.content
        if _hit(response):
            assert queries == 1
            return first, response
        assert queries in (1, 2)
    raise AssertionError(f"no answer from memory within {seconds} s")


def test_a_repeated_read_is_answered_by_the_probe_alone(world):
    client = _client(world.eve)
    first, queries = _get(client, BY_ALIAS)
    assert queries == 1  # asked for the first time: the read, its token and snapshot in it
    second, queries = _get(client, BY_ALIAS)
    if not _hit(second):  # something committed in between (a parallel test run's database)
        first, second = _warm(client, BY_ALIAS)
    hit = second
    assert hit.content == first.content
    assert hit.json()["model_version"]["version"] == "2"
    for header in ("Content-Type", "Content-Security-Policy", "X-Frame-Options", "Allow", "Vary"):
        assert hit.headers.get(header) == first.headers.get(header), header


def test_a_revoke_counts_at_the_next_read(world):
    client = _client(world.eve)
    _warm(client, GET_IRIS)
    services.grants_change(actor=world.alice, obj=world.iris, changes=[{"principal": "eve", "remove": ["EXECUTE"]}])
    response, _ = _get(client, GET_IRIS)
    assert response.status_code == 404, response.content
    assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_leaving_the_owning_group_counts_at_the_next_read(world):
    """gina sees fraud through ml-admins, its owner."""
    client = _client(world.gina)
    read = (MLFLOW + "registered-models/get", {"name": "prod.ml_team.fraud"})
    _warm(client, read)
    world.gina.groups.remove(world.ml_admins)
    assert _get(client, read)[0].status_code == 404


def test_a_moved_alias_and_a_new_tag_count_at_the_next_read(world):
    client = _client(world.eve)
    _warm(client, BY_ALIAS)
    _warm(client, GET_IRIS)
    services.alias_set(actor=world.alice, model=world.iris, alias="Champion", version=1)
    assert _get(client, BY_ALIAS)[0].json()["model_version"]["version"] == "1"
    services.model_tag_set(actor=world.alice, model=world.iris, key="stage", value="gold")
    tags = {t["key"]: t["value"] for t in _get(client, GET_IRIS)[0].json()["registered_model"]["tags"]}
    assert tags["stage"] == "gold"


def test_a_deleted_token_or_a_deactivated_user_is_refused_at_once(world):
    client = _client(world.eve)
    _warm(client, BY_ALIAS)
    world.eve.is_active = False
    world.eve.save()
    assert _get(client, BY_ALIAS)[0].status_code == 401
    world.eve.is_active = True
    world.eve.save()
    _warm(client, BY_ALIAS)
    Token.objects.filter(user=world.eve).delete()
    assert _get(client, BY_ALIAS)[0].status_code == 401


def test_each_token_has_its_own_answers(world):
    """The same search, asked by alice (who owns iris) and then by oscar (who sees nothing)."""
    read = (MLFLOW + "registered-models/search", {"max_results": 100})
    _, alice = _warm(_client(world.alice), read)
    assert IRIS in [m["name"] for m in alice.json()["registered_models"]]
    oscar = _client(world.oscar)
    for _ in range(3):
        response, _ = _get(oscar, read)
        assert response.status_code == 200
        assert response.json().get("registered_models", []) == []


def test_the_same_request_means_the_same_headers_too(world):
    """A kept answer is found before any other middleware runs; the host it was asked under
    is part of what makes a request the same, so another host is checked against
    ALLOWED_HOSTS as ever, and refused."""
    client = _client(world.eve)
    _warm(client, BY_ALIAS)
    path, params = BY_ALIAS
    response = client.get(path, params, HTTP_HOST="evil.example")
    assert response.status_code == 400


def test_no_cache_and_errors_are_computed_every_time(world):
    fresh = _client(world.eve, HTTP_CACHE_CONTROL="no-cache")
    answers = [_get(fresh, BY_ALIAS) for _ in range(3)]
    assert [(queries, _hit(r)) for r, queries in answers] == [(1, False)] * 3  # the read alone, no probe
    missing = (MLFLOW + "registered-models/get", {"name": "prod.ml_team.nothing"})
    client = _client(world.eve)
    answers = [_get(client, missing) for _ in range(3)]
    assert [r.status_code for r, _ in answers] == [404, 404, 404]
    assert answers[1][1] == answers[2][1] == answers[0][1]  # not kept: asked as if for the first time


def test_an_answer_older_than_a_snapshot_seen_since_is_not_probed_for(world):
    """Once this process has read a snapshot newer than a kept answer's (here: get iris after a
    commit), asking for that answer again is computed without the probe — one statement — and
    sees the commit; then it is kept again."""
    client = _client(world.eve)
    _warm(client, BY_ALIAS)
    services.alias_set(actor=world.alice, model=world.iris, alias="Champion", version=1)
    first, _ = _get(client, GET_IRIS)  # reads a snapshot after the commit
    assert first.status_code == 200 and not _hit(first)
    response, queries = _get(client, BY_ALIAS)
    assert (queries, _hit(response)) == (1, False)
    assert response.json()["model_version"]["version"] == "1"
    _warm(client, BY_ALIAS)


def test_a_read_found_stale_twice_in_a_row_is_computed_without_the_probe_until_a_probe_would_hit(world):
    """Commits between the repetitions of a read (a registry written to all day): once two probes
    in a row have found the kept answer stale, the read is computed without a probe — one
    statement, not two — and sees each commit; once it comes out under the snapshot its answer
    was kept under (nothing committed in between), it is probed for, and answered from memory,
    again."""
    client = _client(world.eve)
    _warm(client, BY_ALIAS)
    for version, statements in ((1, 2), (2, 2), (1, 1), (2, 1)):
        services.alias_set(actor=world.alice, model=world.iris, alias="Champion", version=version)
        response, queries = _get(client, BY_ALIAS)
        # Twice the probe finds the answer stale, then the read; from then on the read alone.
        assert (queries, _hit(response)) == (statements, False)
        assert response.json()["model_version"]["version"] == str(version)
    response, queries = _get(client, BY_ALIAS)  # kept under the last commit's snapshot: no probe yet
    assert (queries, _hit(response)) == (1, False)
    _warm(client, BY_ALIAS)  # probed for again (whatever else commits meanwhile), and found


def test_the_store_probes_again_once_a_probe_would_have_hit():
    store, limits = read_cache._Store(), (3, 100)
    store.put("k", (7, "1:5:", b"a", ()), limits)
    assert store.may_hold("k")
    assert store.get("k", 7, "1:6:") is None  # a probe found it stale: the next one is still made
    assert store.may_hold("k")
    store.put("k", (7, "1:6:", b"b", ()), limits)
    assert store.get("k", 7, "1:6:") is not None  # found: the count starts again
    assert store.get("k", 7, "1:7:") is None and store.get("k", 7, "1:8:") is None  # twice in a row
    assert not store.may_hold("k")
    store.put("k", (7, "1:8:", b"b", ()), limits)  # computed afresh under a newer snapshot
    assert not store.may_hold("k")
    store.put("k", (7, "1:8:", b"b", ()), limits)  # and again under the same one: a probe would hit
    assert store.may_hold("k")
    store.get("k", 7, "1:9:"), store.get("k", 7, "1:9:")
    for other in "xyz":  # "k" dropped as the least recently used: its count goes with it
        store.put(other, (7, "1:9:", b"c", ()), limits)
    assert store._stale == {}


def test_entries_zero_turns_it_off(world, settings):
    settings.API_READ_CACHE_ENTRIES = 0
    client = _client(world.eve)
    assert [_get(client, BY_ALIAS)[1] for _ in range(3)] == [1, 1, 1]  # the folded read, each time


def test_the_store_keeps_to_its_bounds():
    """At most `entries` requests and `bytes` of answers, the least recently used dropped first."""
    store, limits = read_cache._Store(), (3, 100)
    for i in range(5):
        store.put(i, (7, "snap", b"x" * 10, ()), limits)
    assert [store.get(i, 7, "snap") is not None for i in range(5)] == [False, False, True, True, True]
    assert store.get(4, 8, "snap") is None and store.get(4, 7, "other") is None  # another user, state
    store.get(2, 7, "snap")  # used: 3 is now the oldest
    store.put("big", (7, "snap", b"x" * 75, ()), limits)  # 30 + 75 > 100 and 4 entries: 3 goes
    present = lambda: [k for k in (2, 3, 4, "big", "huge") if store.get(k, 7, "snap") is not None]  # noqa: E731
    assert present() == [2, 4, "big"]
    store.put("huge", (7, "snap", b"x" * 95, ()), limits)  # the bytes alone: all the others go
    assert present() == ["huge"]


CACHED_READS = [
    BY_ALIAS,
    GET_IRIS,
    (MLFLOW + "model-versions/get", {"name": IRIS, "version": "1"}),
    (MLFLOW + "model-versions/search", {"filter": f"name = '{IRIS}'"}),
    (MLFLOW + "registered-models/search", {"max_results": 100}),
    (MLFLOW + "registered-models/get-latest-versions", {"name": IRIS}),
    (MLFLOW + "model-versions/get-download-uri", {"name": IRIS, "version": "1"}),
]


@pytest.mark.parametrize("read", CACHED_READS, ids=lambda r: r[0].rsplit("/", 2)[-2] + "/" + r[0].rsplit("/", 1)[-1])
def test_a_first_answer_is_kept_under_the_snapshot_of_its_first_statement(world, read):
    """Each cached read's first statement is the one that checks the token and reads the
    snapshot, so its first answer is kept and the second request is answered from memory. (A
    view whose first statement were another would keep nothing the first time: that statement
    may have seen an older state than the snapshot read after it.)"""
    client = _client(world.eve)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        read_cache.store.clear()
        first, _ = _get(client, read)
        assert first.status_code == 200, first.content
        second, queries = _get(client, read)
        if _hit(second):  # else something committed in between (a parallel test run's database)
            assert queries == 1 and second.content == first.content
            return
    raise AssertionError("the second request was never answered from memory")


def test_readers_never_see_an_alias_older_than_the_last_committed_move(world):
    """Three reader threads (one store, as a web process's threads share it) ask by alias over
    and over while a writer moves the alias up through versions 3 to 12. A read that starts
    after a move has committed must answer that version or a later one — from memory or not."""
    import threading

    from registry.models import ModelVersion

    for _ in range(10):
        services.version_create(actor=world.alice, model=world.iris, source="runs:/abc/model", run_id="abc",
                                status=ModelVersion.READY)
    committed, done, failures, hits = [2], threading.Event(), [], [0]
    token = Token.objects.get_or_create(user=world.eve)[0].key

    def reader():
        from django.db import connections

        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        try:
            while not done.is_set():
                floor = committed[0]
                response, queries = _get(client, BY_ALIAS)
                version = int(response.json()["model_version"]["version"])
                hits[0] += _hit(response)
                if version < floor:
                    failures.append((floor, version))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for version in range(3, 13):
        time.sleep(0.05)
        services.alias_set(actor=world.alice, model=world.iris, alias="champion", version=version)
        committed[0] = version
    time.sleep(0.05)
    done.set()
    for t in threads:
        t.join()
    assert failures == []
    if not hits[0]:  # a parallel test run's commits changed the snapshot all along
        pytest.skip("no answer came from memory: the cache was not exercised this time")


# --- Before Django: `ReadCacheWSGI`, as gunicorn calls it -------------------------------------
def _wsgi_get(app, user, read, **headers):
    """(status, headers, body, whether the answer came from memory before Django, statements)
    of one GET through the WSGI application `app`."""
    from tests import wsgi_support

    headers = {"HTTP_AUTHORIZATION": f"Bearer {Token.objects.get_or_create(user=user)[0].key}", **headers}
    with CaptureQueriesContext(connection) as ctx:
        status, response_headers, result = wsgi_support.call(app, *read, **headers)
        body = b"".join(result)
    # Django's handler answers with its response object; only a kept answer sent before it is a list.
    return status, response_headers, body, type(result) is list, len(ctx.captured_queries)


@pytest.fixture
def wsgi_app():
    from django.core.wsgi import get_wsgi_application

    return read_cache.ReadCacheWSGI(get_wsgi_application())


def _wsgi_warm(app, user, read, seconds=10):
    """(the first answer, the first one from memory); see `_warm`."""
    first = _wsgi_get(app, user, read)
    assert first[0] == "200 OK", first
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        again = _wsgi_get(app, user, read)
        assert again[0] == "200 OK"
        if again[3]:
            return first, again
    raise AssertionError(f"no answer from memory within {seconds} s")


def test_a_kept_answer_is_sent_before_django_with_the_first_answers_status_and_headers(world, wsgi_app):
    first, hit = _wsgi_warm(wsgi_app, world.eve, BY_ALIAS)
    assert not first[3] and hit[4] == 1  # computed by Django first; then the probe alone
    assert (hit[0], hit[1], hit[2]) == (first[0], first[1], first[2])
    assert hit[1]["Content-Length"] == str(len(hit[2])) and hit[1]["X-Frame-Options"] == "DENY"


def test_before_django_a_commit_counts_at_the_next_read(world, wsgi_app):
    """A moved alias and a revoke, each seen by the very next request through the WSGI layer;
    a stale answer costs two statements, the probe and the read."""
    _wsgi_warm(wsgi_app, world.eve, BY_ALIAS)
    services.alias_set(actor=world.alice, model=world.iris, alias="Champion", version=1)
    status, _, body, hit, queries = _wsgi_get(wsgi_app, world.eve, BY_ALIAS)
    assert (status, hit, queries) == ("200 OK", False, 2)
    assert b'"version":"1"' in body.replace(b" ", b"")
    _wsgi_warm(wsgi_app, world.eve, BY_ALIAS)
    services.grants_change(actor=world.alice, obj=world.iris, changes=[{"principal": "eve", "remove": ["EXECUTE"]}])
    status, _, body, hit, _ = _wsgi_get(wsgi_app, world.eve, BY_ALIAS)
    assert (status, hit) == ("404 Not Found", False), body


def test_before_django_a_failing_probe_leaves_the_request_to_django(world, wsgi_app, monkeypatch):
    """Anything going wrong before Django (here: looking after the connection) sends the
    request on to Django's handling, which answers it as without the layer."""
    _wsgi_warm(wsgi_app, world.eve, BY_ALIAS)

    def broken():
        raise RuntimeError("connection check failed")

    monkeypatch.setattr(read_cache, "close_old_connections", broken)
    status, _, body, hit, _ = _wsgi_get(wsgi_app, world.eve, BY_ALIAS)
    assert (status, hit) == ("200 OK", False)
    assert b"Champion" in body or b"champion" in body


def test_before_django_pages_and_other_methods_go_straight_to_django(world, wsgi_app):
    status, _, _, hit, queries = _wsgi_get(wsgi_app, world.eve, ("/", {}), HTTP_AUTHORIZATION="")
    assert hit is False and status in ("200 OK", "302 Found")
    status, _, body, hit, _ = _wsgi_get(wsgi_app, world.eve, BY_ALIAS, REQUEST_METHOD="POST")
    assert hit is False and status != "200 OK"


def test_before_django_a_connection_kept_for_no_time_is_closed_after_a_kept_answer(world, wsgi_app, monkeypatch):
    """DB_CONN_MAX_AGE=0 (behind a pooler): Django closes the connection after each request;
    so does the layer after a kept answer it sent itself."""
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    connection.close()  # the next connection is opened under the setting
    _wsgi_warm(wsgi_app, world.eve, BY_ALIAS)
    assert connection.connection is None


def test_before_django_a_refused_token_is_checked_once_by_the_probe(world, wsgi_app):
    """A token whose user is inactive (or unknown), where an answer was kept for it: the
    layer's probe finds no user, and Django answers the 401 without probing again."""
    _wsgi_warm(wsgi_app, world.eve, BY_ALIAS)
    world.eve.is_active = False
    world.eve.save()
    status, _, _, hit, queries = _wsgi_get(wsgi_app, world.eve, BY_ALIAS)
    assert (status, hit, queries) == ("401 Unauthorized", False, 2)  # the probe, DRF's own check
