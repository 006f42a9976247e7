"""Concurrent writers on one model (PostgreSQL: real row locks between real connections).

SQLite serialises every writer on one database lock, so these races cannot happen there; the
tests are skipped on it. `make test` with DATABASE_URL=postgres://… (as `.ci/run` does) runs them.
"""

import threading
import time

import orjson
import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction

from registry import services
from registry.models import Alias, AuditEvent, ModelTag, ModelVersion
from tests.conftest import SIGNATURE

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor == "sqlite",
        reason="needs PostgreSQL: SQLite serialises all writers, so there is no race to test "
        "(run with DATABASE_URL=postgres://postgres@127.0.0.1:5432/catalog_explorer)",
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def model():
    admin = User.objects.create_superuser("admin", "admin@example.com", "admin-pass-123")
    catalog = services.catalog_create(actor=admin, name="prod")
    schema = services.schema_create(actor=admin, catalog=catalog, name="ml_team")
    model = services.model_create(actor=admin, schema=schema, name="iris")
    model.actor = admin
    return model


def run_at_once(count, work):
    """`work(i)` in `count` threads released together; returns the exceptions raised."""
    barrier = threading.Barrier(count)
    errors = []

    def target(i):
        try:
            barrier.wait(timeout=30)
            work(i)
        except Exception as exc:  # noqa: BLE001 — collected and asserted on below
            errors.append(exc)
        finally:
            connection.close()  # each thread has its own connection; leave none open

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return errors


def test_it_numbers_20_concurrent_versions_1_to_20(model):
    def create(i):
        services.version_create(
            actor=model.actor, model=model, signature=SIGNATURE, status=ModelVersion.READY, description=f"t{i}"
        )

    errors = run_at_once(20, create)
    assert errors == []
    versions = list(ModelVersion.objects.filter(model=model).order_by("version").values_list("version", "description"))
    assert [v for v, _ in versions] == list(range(1, 21))
    assert sorted(d for _, d in versions) == sorted(f"t{i}" for i in range(20))
    model.refresh_from_db()
    assert model.last_version == 20
    assert AuditEvent.objects.filter(action="create", object_type="model_version").count() == 20


def test_it_keeps_one_alias_row_when_10_writers_move_it_at_once(model):
    for _ in range(10):
        services.version_create(actor=model.actor, model=model, signature=SIGNATURE, status=ModelVersion.READY)

    errors = run_at_once(10, lambda i: services.alias_set(actor=model.actor, model=model, alias="Champion", version=i + 1))
    assert errors == []
    rows = list(Alias.objects.filter(model=model))
    assert len(rows) == 1
    events = list(AuditEvent.objects.filter(action="set_alias").order_by("id"))
    assert len(events) == 10
    assert [e.before is None for e in events].count(True) == 1  # exactly one writer created it
    # The alias ends where the last committed writer put it.
    assert rows[0].version.version == events[-1].after["version"]


def test_writers_of_one_tag_at_once_each_replace_the_value_the_one_before_left(model):
    """Setting a tag that is there reads its value and writes the new one in one statement, the
    row locked as it is read (`services._tag_replace`): each writer's audit event shows as its
    `before` the value the writer before it committed, and the tag ends with the last one's."""
    services.model_tag_set(actor=model.actor, model=model, key="stage", value="start")
    errors = run_at_once(10, lambda i: services.model_tag_set(actor=model.actor, model=model, key="stage",
                                                              value=f"v{i}"))
    assert errors == []
    events = list(AuditEvent.objects.filter(action="set_tag").order_by("id"))
    assert len(events) == 11 and events[0].before is None
    for earlier, later in zip(events, events[1:]):
        assert later.before == earlier.after
    assert list(ModelTag.objects.filter(model=model, key="stage").values_list("value", flat=True)) == [
        events[-1].after["stage"]]


def test_it_never_exceeds_the_alias_limit_under_concurrent_creation(model):
    services.version_create(actor=model.actor, model=model, signature=SIGNATURE, status=ModelVersion.READY)
    for i in range(8):
        services.alias_set(actor=model.actor, model=model, alias=f"a{i}", version=1)

    # 5 writers race for the last 2 free places.
    errors = run_at_once(5, lambda i: services.alias_set(actor=model.actor, model=model, alias=f"new{i}", version=1))
    assert Alias.objects.filter(model=model).count() == 10
    assert len(errors) == 3 and all("10 aliases" in str(e) for e in errors)


def test_a_doc_rewrite_that_waited_on_another_reads_the_model_again(model):
    """Two changes of one model that lock nothing in common (a model tag; a tag of a version): the
    second one's doc rewrite (registry/docs.py), read before the first committed, waits on the
    first's uncommitted rewrite, then finds the doc's revision moved and reads again: the doc
    ends with both changes. (Written unconditionally, it would lack the first's tag.)"""
    from registry import selectors
    from registry.api.mlflow.serializers import model_out
    from registry.models import ModelDoc

    version = services.version_create(actor=model.actor, model=model, signature=SIGNATURE, status=ModelVersion.READY)
    written, release, errors = threading.Event(), threading.Event(), []

    def in_thread(work):
        def target():
            try:
                work()
            except Exception as exc:  # noqa: BLE001 — asserted on below
                errors.append(exc)
            finally:
                connection.close()
        thread = threading.Thread(target=target)
        thread.start()
        return thread

    def first():
        with transaction.atomic():
            services.model_tag_set(actor=model.actor, model=model, key="stage", value="first")
            written.set()  # its doc rewritten, not committed
            release.wait(30)

    one = in_thread(first)
    assert written.wait(30)
    two = in_thread(lambda: services.version_tag_set(actor=model.actor, version=version, key="by", value="second"))
    with connection.cursor() as cursor:
        for _ in range(300):  # until the second waits for a lock (the doc's)
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND wait_event_type = 'Lock'")
            if cursor.fetchone()[0]:
                break
            time.sleep(0.02)
        else:
            raise AssertionError("the second change never waited")
    release.set()
    one.join(60)
    two.join(60)
    assert errors == []
    doc = orjson.loads(ModelDoc.objects.get(model=model).json)
    assert doc == model_out(selectors.registry_models_by_id([model.pk])[0])
    assert doc["tags"] == [{"key": "stage", "value": "first"}]
    assert doc["latest_versions"][0]["tags"] == [{"key": "by", "value": "second"}]
