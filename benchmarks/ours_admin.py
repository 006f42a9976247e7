"""Set-up steps of the benchmark that talk to our database directly (run by bench_api.py with the
benchmark's own DATABASE_URL / VAR_DIR in the environment; never against a real installation).

    python benchmarks/ours_admin.py setup                  → prints the bench user's API token
    python benchmarks/ours_admin.py bulk CATALOG MODELS VERSIONS SOURCE
    python benchmarks/ours_admin.py jobrun NAME VERSION    → when its job started and finished, its directory
    python benchmarks/ours_admin.py bigfile MODEL_ID BYTES → writes a file into a logged model
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "catalog_explorer.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

from registry.models import Catalog, Job, ModelTag, ModelVersion, RegisteredModel, Schema  # noqa: E402

USER = "bench"


def setup():
    """A plain (not super) user who owns the catalogs `bench` and `scale`: every read goes
    through the permission filter, as it does for real users."""
    user, _ = get_user_model().objects.get_or_create(username=USER)
    for name in ("bench", "scale"):
        catalog, _ = Catalog.objects.get_or_create(name=name, defaults={"owner_user": user, "created_by": user})
        Schema.objects.get_or_create(catalog=catalog, name="ml", defaults={"owner_user": user, "created_by": user})
    print(Token.objects.get_or_create(user=user)[0].key)


def bulk(catalog, n_models, n_versions, source):
    """`n_models` × `n_versions` READY versions written straight into the tables (no jobs, no
    files), then the new models' docs: only to make the tables as big as a large registry for
    the read benchmarks."""
    user = get_user_model().objects.get(username=USER)
    schema = Schema.objects.get(catalog__name=catalog, name="ml")
    n_models, n_versions = int(n_models), int(n_versions)
    with transaction.atomic():
        models = RegisteredModel.objects.bulk_create(
            [
                RegisteredModel(
                    schema=schema, name=f"m_{i:05d}", full_name=f"{catalog}.ml.m_{i:05d}", owner_user=user,
                    created_by=user, last_version=n_versions,
                )
                for i in range(n_models)
            ],
            batch_size=2000,
        )
        ModelTag.objects.bulk_create(
            [ModelTag(model=m, key="tier", value="gold" if i % 10 == 0 else "bronze") for i, m in enumerate(models)],
            batch_size=5000,
        )
        batch = []
        for m in models:
            for v in range(1, n_versions + 1):
                batch.append(
                    ModelVersion(model=m, version=v, status=ModelVersion.READY, source=source, created_by=user)
                )
                if len(batch) >= 10000:
                    ModelVersion.objects.bulk_create(batch)
                    batch = []
        ModelVersion.objects.bulk_create(batch)
    # Each new model's kept JSON, as the registry's own writes leave it (registry/docs.py).
    from registry import docs

    docs.rebuild()
    print(ModelVersion.objects.count())


def jobrun(name, version):
    """When the worker started and finished the version's job (epoch seconds), and the directory
    of the version's files."""
    from registry import storage

    job = Job.objects.select_related("version").get(version__model__full_name=name, version__version=int(version))
    print(job.started_at.timestamp(), job.finished_at.timestamp(),
          storage.artifact_storage().path(storage.version_prefix(job.version.pk)))


def bigfile(model_id, size):
    """Write `size` bytes of random-ish data into a logged model's artifact directory (the
    source of the 1 GB version), as if the client had uploaded it."""
    from django.conf import settings

    from registry import tracking
    from registry.models import LoggedModel

    logged = LoggedModel.objects.get(model_id=model_id)
    directory = Path(settings.ARTIFACT_ROOT) / tracking.logged_model_prefix(logged)
    path = directory / "weights.bin"
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(int(size) >> 20):
            f.write(block)
    print(directory)


if __name__ == "__main__":
    {"setup": setup, "bulk": bulk, "jobrun": jobrun, "bigfile": bigfile}[sys.argv[1]](
        *sys.argv[2:])
