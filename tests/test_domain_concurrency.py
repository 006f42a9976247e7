"""Concurrent writers on one model (PostgreSQL: real row locks between real connections).

SQLite serialises every writer on one database lock, so these races cannot happen there; the
tests are skipped on it. `make test` with DATABASE_URL=postgres://… (as `.ci/run` does) runs them.
"""

import threading

import pytest
from django.contrib.auth.models import User
from django.db import connection

from registry import services
from registry.models import Alias, AuditEvent, ModelVersion
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


def test_it_never_exceeds_the_alias_limit_under_concurrent_creation(model):
    services.version_create(actor=model.actor, model=model, signature=SIGNATURE, status=ModelVersion.READY)
    for i in range(8):
        services.alias_set(actor=model.actor, model=model, alias=f"a{i}", version=1)

    # 5 writers race for the last 2 free places.
    errors = run_at_once(5, lambda i: services.alias_set(actor=model.actor, model=model, alias=f"new{i}", version=1))
    assert Alias.objects.filter(model=model).count() == 10
    assert len(errors) == 3 and all("10 aliases" in str(e) for e in errors)
