"""Register, copy and delete as Celery jobs, against a real Redis and real worker processes
(no eager mode): the worker opens the same test database, so every test commits
(`django_db(transaction=True)`)."""

import time

import pytest
from django.db import transaction

from registry import jobs, services, storage, tasks
from registry.models import Job, ModelVersion, VersionFile, VersionInput
from tests import jobs_support as js
from tests.jobs_support import artifact_dir, artifacts, worker  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db(transaction=True)

SOURCE = "mlartifacts/1/0123abcd/artifacts/model"
INPUTS = [{"name": "iris_train", "digest": "a1b2c3", "source_type": "delta_table",
           "source": "prod.ml_team.iris_train", "context": "training"}]


@pytest.fixture
def alice_target(world):
    """A second model alice owns, to copy into."""
    return services.model_create(actor=world.alice, schema=world.ml_team, name="iris_prod")


def _register(world, prefix=SOURCE, **kw):
    return jobs.job_create_register(
        actor=world.alice, model=world.iris, source_prefix=prefix, run_id="0123abcd", lineage_inputs=INPUTS, **kw
    )


def _assert_files_match(artifacts, version, expected):
    recorded = dict(VersionFile.objects.filter(version=version).values_list("path", "sha256"))
    assert recorded == expected
    assert js.stored_files(artifacts, storage.version_prefix(version.pk)) == expected


def test_it_registers_and_copies_a_multi_file_model(world, artifacts, worker, alice_target):
    expected = js.write_model_source(SOURCE, extra_files=3)
    version, job = _register(world)
    assert (version.status, job.state) == (ModelVersion.PENDING, Job.QUEUED)

    js.wait_finished(job)
    version.refresh_from_db()
    assert (job.state, version.status) == (Job.SUCCEEDED, ModelVersion.READY), job.message
    assert (job.percent, job.files_done, job.files_total) == (100, 9, 9)
    assert job.bytes_done == job.bytes_total > 1_000_000
    assert job.attempts == 1
    _assert_files_match(artifacts, version, expected)
    assert [i["name"] for i in version.signature["inputs"]] == ["sepal_length", "sepal_width"]
    assert list(VersionInput.objects.filter(version=version).values("name", "context")) == [
        {"name": "iris_train", "context": "training"}
    ]

    copy, copy_job = jobs.job_create_copy(actor=world.alice, source_version=version, target_model=alice_target)
    js.wait_finished(copy_job)
    copy.refresh_from_db()
    assert (copy_job.state, copy.status) == (Job.SUCCEEDED, ModelVersion.READY), copy_job.message
    assert copy_job.percent == 100 and copy_job.bytes_done == job.bytes_total
    assert copy.copied_from_id == version.pk and copy.model_id == alice_target.pk
    assert copy.signature == version.signature
    _assert_files_match(artifacts, copy, expected)
    assert VersionInput.objects.filter(version=copy).count() == 1


def test_it_fails_a_model_without_signature_and_leaves_no_files(world, artifacts, worker):
    js.write_model_source(SOURCE, signature=False)
    version, job = _register(world)
    js.wait_finished(job)
    version.refresh_from_db()
    assert job.state == Job.FAILED and version.status == ModelVersion.FAILED
    for text in ("no signature", "input_example=", "signature="):
        assert text in job.message and text in version.status_message
    assert js.stored_files(artifacts, storage.version_prefix(version.pk)) == {}
    assert not VersionFile.objects.filter(version=version).exists()


def test_the_same_message_delivered_three_times_makes_one_version_and_one_copy(world, artifacts, worker):
    expected = js.write_model_source(SOURCE)
    before = ModelVersion.objects.count()
    version, job = _register(world)
    tasks.run_job.delay(job.pk)  # redelivery, as after a lost acknowledgement
    tasks.run_job.delay(job.pk)
    js.wait_finished(job)
    time.sleep(1.0)  # let the duplicate deliveries be consumed
    job.refresh_from_db()
    assert job.state == Job.SUCCEEDED and job.attempts == 1
    assert ModelVersion.objects.count() == before + 1
    _assert_files_match(artifacts, version, expected)
    assert list((artifacts / "registry" / "versions").iterdir()) == [artifacts / storage.version_prefix(version.pk)]


def test_a_job_queued_in_a_rolled_back_transaction_never_runs(world, artifacts, worker):
    js.write_model_source(SOURCE)
    before = (ModelVersion.objects.count(), Job.objects.count())
    seen = {}
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            version, job = _register(world)
            seen.update(version=version.pk, job=job.pk)
            raise RuntimeError("the request failed after queueing")
    tasks.run_job.delay(seen["job"])  # even a stray message for it finds no job to run
    time.sleep(1.5)
    assert (ModelVersion.objects.count(), Job.objects.count()) == before
    assert js.stored_files(artifacts, "registry") == {}
    assert f"Job {seen['job']}: nothing to do" in worker.output()


def test_delete_removes_metadata_at_once_and_files_in_a_job(world, artifacts, worker):
    js.write_model_source(SOURCE)
    version, job = _register(world)
    js.wait_finished(job)
    prefix = storage.version_prefix(version.pk)
    assert js.stored_files(artifacts, prefix)

    services.model_delete(actor=world.alice, model=world.iris)
    assert not ModelVersion.objects.filter(pk=version.pk).exists()
    services.model_create(actor=world.alice, schema=world.ml_team, name="iris")  # the name is free at once
    delete_job = Job.objects.get(kind=Job.DELETE)
    assert delete_job.target_name == "prod.ml_team.iris" and delete_job.created_by == world.alice
    js.wait_finished(delete_job)
    assert delete_job.state == Job.SUCCEEDED, delete_job.message
    assert js.stored_files(artifacts, prefix) == {}
    assert not (artifacts / prefix).exists()


def test_a_worker_killed_mid_copy_never_leaves_a_ready_version_with_wrong_files(world, artifacts, tmp_path):
    js.require_redis()
    expected = js.write_model_source(SOURCE, weights_bytes=1_000_000, extra_files=5)  # ~6 MB: ~4 s
    # Workers of this test's own (the module's worker must not take the job), copying slowly.
    with js.queue_of_its_own(f"{js.QUEUE}-kill") as queue:
        slow = {"ARTIFACT_COPY_MAX_BYTES_PER_SECOND": 1_500_000, "queue": queue}  # 1 MiB chunks
        with js.running_worker(artifacts, tmp_path, **slow) as first:
            version, job = _register(world)

            def copying():
                job.refresh_from_db()
                return job.state == Job.RUNNING and job.bytes_done > 0 and job.files_done < job.files_total - 2

            js.wait_for(copying, timeout=30, interval=0.05, what="the copy to be under way")
            first.kill()
        job.refresh_from_db()
        assert job.state == Job.RUNNING and job.files_done < job.files_total
        assert ModelVersion.objects.get(pk=version.pk).status == ModelVersion.PENDING

        with js.running_worker(artifacts, tmp_path, **slow):
            time.sleep(1.2)
            swept = jobs.sweep_stale(stale_after=1)
            assert swept["requeued"] == [job.pk]
            job.refresh_from_db()
            # Either still waiting with the reason, or already claimed by the new worker (a claim
            # counts an attempt and starts a fresh message): both are a requeue, never a failure.
            assert job.state in (Job.QUEUED, Job.RUNNING)
            assert "stopped responding" in job.message or job.attempts == 2, (job.message, job.attempts)
            js.wait_finished(job, timeout=60)
    version.refresh_from_db()
    assert (job.state, version.status, job.attempts) == (Job.SUCCEEDED, ModelVersion.READY, 2), job.message
    _assert_files_match(artifacts, version, expected)
    assert not Job.objects.filter(state=Job.RUNNING).exists()


def test_the_sweep_fails_a_job_lost_too_often_with_a_reason(world, artifacts):
    js.write_model_source(SOURCE)
    # Queued where no worker listens: the module's worker, if started, must not run the job
    # while this test rewrites it into a lost one.
    with js.queue_of_its_own(f"{js.QUEUE}-unheard") as queue:
        version, job = _register(world)
    js.purge_test_queue(queue)
    Job.objects.filter(pk=job.pk).update(
        state=Job.RUNNING, attempts=3, lease="gone", heartbeat_at=job.created_at
    )
    storage.artifact_storage().save(f"{storage.version_prefix(version.pk)}/model.pkl", js.ContentFile(b"partial"))
    assert jobs.sweep_stale(stale_after=0) == {"requeued": [], "failed": [job.pk]}
    job.refresh_from_db()
    version.refresh_from_db()
    assert job.state == Job.FAILED and "stopped responding" in job.message
    assert version.status == ModelVersion.FAILED and "stopped responding" in version.status_message
    assert js.stored_files(artifacts, storage.version_prefix(version.pk)) == {}
