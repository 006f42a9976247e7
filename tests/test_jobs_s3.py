"""ARTIFACT_STORAGE=s3: the same register/copy/delete code over an S3 bucket (moto's in-process
S3, through django-storages and boto3)."""

import hashlib
import os
import subprocess
import sys

import blake3
import pytest
from django.conf import settings as django_settings

from registry import jobs, services, storage
from registry.models import Job, ModelVersion, VersionFile
from tests import jobs_support as js

moto = pytest.importorskip("moto")

SOURCE = "mlartifacts/5/runs3/artifacts/model"
BUCKET = "catalog-explorer-test"


@pytest.fixture
def bucket(settings, monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with moto.mock_aws():
        import boto3
        from boto3.s3.transfer import TransferConfig

        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        settings.STORAGES = {
            **settings.STORAGES,
            "artifacts": {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {"bucket_name": BUCKET, "location": "ce", "file_overwrite": True, "default_acl": None,
                            "transfer_config": TransferConfig(use_threads=False)},
            },
        }
        yield client


def _objects(client, prefix, digest=hashlib.sha256):
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"ce/{prefix}/"):
        for obj in page.get("Contents", []):
            body = client.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
            found[obj["Key"][len(f"ce/{prefix}/"):]] = digest(body).hexdigest()
    return found


def test_register_copy_and_delete_work_on_s3(world, bucket):
    expected = js.write_model_source(SOURCE, extra_files=1)
    version, job = jobs.job_create_register(actor=world.alice, model=world.iris, source_prefix=SOURCE)
    jobs.job_run(job.pk)
    job.refresh_from_db()
    version.refresh_from_db()
    assert (job.state, version.status) == (Job.SUCCEEDED, ModelVersion.READY), job.message
    assert _objects(bucket, storage.version_prefix(version.pk)) == expected
    assert dict(VersionFile.objects.filter(version=version).values_list("path", "sha256")) == expected

    target = services.model_create(actor=world.alice, schema=world.ml_team, name="iris_s3")
    copy, copy_job = jobs.job_create_copy(actor=world.alice, source_version=version, target_model=target)
    jobs.job_run(copy_job.pk)
    copy.refresh_from_db()
    assert copy.status == ModelVersion.READY
    assert _objects(bucket, storage.version_prefix(copy.pk)) == expected
    for v in (version, copy):  # the BLAKE3 the copy checked by, and the one it recorded
        assert dict(VersionFile.objects.filter(version=v).values_list("path", "blake3")) == _objects(
            bucket, storage.version_prefix(v.pk), blake3.blake3)

    prefix = storage.version_prefix(version.pk)
    services.version_delete(actor=world.alice, version=version)
    jobs.job_run(Job.objects.get(kind=Job.DELETE).pk)
    assert _objects(bucket, prefix) == {}


def test_a_signature_less_model_leaves_nothing_in_the_bucket(world, bucket):
    js.write_model_source(SOURCE, signature=False)
    version, job = jobs.job_create_register(actor=world.alice, model=world.iris, source_prefix=SOURCE)
    jobs.job_run(job.pk)
    version.refresh_from_db()
    assert version.status == ModelVersion.FAILED and "input_example=" in version.status_message
    assert _objects(bucket, storage.version_prefix(version.pk)) == {}


def test_the_s3_setting_needs_a_bucket():
    env = {**os.environ, "ARTIFACT_STORAGE": "s3", "ARTIFACT_S3_BUCKET": ""}
    code = "import django; django.setup()"
    env["DJANGO_SETTINGS_MODULE"] = "catalog_explorer.settings"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                            cwd=django_settings.BASE_DIR)
    assert result.returncode != 0 and "ARTIFACT_S3_BUCKET" in result.stderr
    env["ARTIFACT_S3_BUCKET"] = "models"
    code = ("import django; django.setup(); from django.core.files.storage import storages; "
            "print(type(storages['artifacts']).__name__)")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                            cwd=django_settings.BASE_DIR)
    assert result.stdout.strip() == "S3Storage", result.stderr
