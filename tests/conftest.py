"""Shared personas over one small world (healthchecks-style: each test names who acts).

prod (catalog, owned by admin)
  ml_team (schema, owned by admin)
    iris   — owned by alice (a user)
    fraud  — owned by the group ml-admins (gina is a member)
staging (catalog, owned by admin) — nobody but admin holds anything there
    ml_team.churn — owned by admin

Grants (all on prod unless said):
  alice, ml-admins, eve, tom, cody: USE CATALOG on prod, USE SCHEMA on prod.ml_team
  eve:  EXECUTE on prod.ml_team.iris           (reader of one model)
  tom:  EXECUTE + APPLY TAG on schema ml_team  (inherited by every model in it)
  cody: CREATE MODEL on schema ml_team         (may create models, sees none he does not own)
  uma:  USE CATALOG on prod only               (sees the catalog, not the schema)
  oscar: nothing                                (outsider)
  admin: superuser
"""

import glob
import os
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group, User

from registry import services
from registry.models import ModelVersion

SIGNATURE = {
    "inputs": [{"name": "sepal_length", "type": "double"}, {"name": "sepal_width", "type": "double"}],
    "outputs": [{"type": "long"}],
}


def pytest_sessionfinish(session):
    """SQLite keeps a test database's write-ahead log beside it (`-wal`, `-shm`: ~4 MB a test
    process); Django removes only the database file when it drops it, so every run left them in
    the temporary directory. Removed here once their database is gone."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    name = database.get("TEST", {}).get("NAME")
    if not name or not database["ENGINE"].endswith("sqlite3"):
        return
    for path in glob.glob(glob.escape(name) + "*"):  # pytest-xdist's workers add _gw<n>
        if path.endswith(("-wal", "-shm")) and not os.path.exists(path[:-4]):
            os.remove(path)


@pytest.fixture(scope="session", autouse=True)
def _jobs_test_queue():
    """Jobs queued by any test go to a queue of this session's own on Redis DB 15, never to a
    development worker's queue (tests/jobs_support.py starts the workers that consume it)."""
    from tests import jobs_support

    jobs_support.use_test_queue()
    yield
    jobs_support.purge_test_queue()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def lockout(settings):
    """Login guard limits small enough to reach (3 per username, 5 per address, 60 s), on a clean cache."""
    from django.core.cache import cache

    cache.clear()
    settings.API_LOGIN_FAILURE_LIMIT = 3
    settings.API_LOGIN_FAILURE_LIMIT_PER_ADDRESS = 5
    settings.API_LOGIN_FAILURE_WINDOW = 60
    yield
    cache.clear()


def _grant(actor, obj, principal, *privileges):
    services.grants_change(actor=actor, obj=obj, changes=[{"principal": principal, "add": list(privileges)}])


@pytest.fixture
def world(db):
    w = SimpleNamespace()
    w.admin = User.objects.create_superuser("admin", "admin@example.com", "admin-pass-123")
    for name in ("alice", "gina", "eve", "tom", "cody", "uma", "oscar"):
        setattr(w, name, User.objects.create_user(name, f"{name}@example.com", f"{name}-pass-123"))
    w.ml_admins = Group.objects.create(name="ml-admins")
    w.gina.groups.add(w.ml_admins)

    w.prod = services.catalog_create(actor=w.admin, name="prod", description="Production models")
    w.ml_team = services.schema_create(actor=w.admin, catalog=w.prod, name="ml_team")
    w.staging = services.catalog_create(actor=w.admin, name="staging")
    w.staging_team = services.schema_create(actor=w.admin, catalog=w.staging, name="ml_team")
    w.churn = services.model_create(actor=w.admin, schema=w.staging_team, name="churn")

    for principal in ("alice", "ml-admins", "eve", "tom", "cody"):
        _grant(w.admin, w.prod, principal, "USE CATALOG")
        _grant(w.admin, w.ml_team, principal, "USE SCHEMA")
    _grant(w.admin, w.prod, "uma", "USE CATALOG")
    _grant(w.admin, w.ml_team, "cody", "CREATE MODEL")
    _grant(w.admin, w.ml_team, "alice", "CREATE MODEL")
    _grant(w.admin, w.ml_team, "ml-admins", "CREATE MODEL")

    w.iris = services.model_create(actor=w.alice, schema=w.ml_team, name="iris", description="Iris *classifier*")
    w.fraud = services.model_create(actor=w.admin, schema=w.ml_team, name="fraud")
    services.owner_transfer(actor=w.admin, obj=w.fraud, principal="ml-admins")
    _grant(w.alice, w.iris, "eve", "EXECUTE")
    _grant(w.admin, w.ml_team, "tom", "EXECUTE", "APPLY TAG")

    w.v1 = services.version_create(
        actor=w.alice, model=w.iris, source="runs:/abc/model", run_id="abc", signature=SIGNATURE,
        status=ModelVersion.READY,
    )
    w.v2 = services.version_create(
        actor=w.alice, model=w.iris, source="runs:/def/model", run_id="def", signature=SIGNATURE,
        status=ModelVersion.READY,
    )
    services.alias_set(actor=w.alice, model=w.iris, alias="Champion", version=2)
    services.model_tag_set(actor=w.alice, model=w.iris, key="task", value="classification")
    w.fraud_v1 = services.version_create(
        actor=w.gina, model=w.fraud, source="runs:/ghi/model", run_id="ghi", signature=SIGNATURE,
        status=ModelVersion.READY,
    )
    for obj in (w.iris, w.fraud, w.churn):
        obj.refresh_from_db()
    return w
