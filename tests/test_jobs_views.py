"""Jobs pages, progress endpoints, the Files tab, downloads and the Copy form. Jobs are run here
by calling the domain (`jobs.job_run`) in-process; the Celery path itself is covered by
tests/test_jobs_integration.py with a real worker."""

import hashlib
import io
import random
import zipfile

import blake3
import pytest
from django.urls import reverse

from registry import jobs, services, storage
from registry.errors import Forbidden, InvalidInput
from registry.models import Job, ModelVersion, VersionFile
from tests import jobs_support as js
from tests.jobs_support import artifact_dir, artifacts, broker_down  # noqa: F401 - fixtures

SOURCE = "mlartifacts/7/run1/artifacts/model"


@pytest.fixture
def ready(world, artifacts):
    """iris v3, registered from a multi-file source by running its job in-process."""
    world.expected = js.write_model_source(SOURCE)
    version, job = jobs.job_create_register(
        actor=world.alice, model=world.iris, source_prefix=SOURCE, run_id="run1",
        lineage_inputs=[{"name": "iris_train", "source_type": "delta_table", "source": "prod.data.iris", "context": "training"}],
    )
    jobs.job_run(job.pk)
    version.refresh_from_db()
    job.refresh_from_db()
    assert version.status == ModelVersion.READY, job.message
    return version, job


def _version_url(name, version, *rest):
    c, s, m = version.model.full_name.split(".")
    return reverse(name, args=[c, s, m, version.version, *rest])


def test_it_answers_404_for_another_users_job_progress(client, world, ready):
    version, job = ready
    url = reverse("job_progress", args=[job.pk])
    for who in ("oscar", "eve", "tom"):  # eve and tom see the version, but the job is alice's
        client.force_login(getattr(world, who))
        assert client.get(url).status_code == 404
    client.force_login(world.alice)
    response = client.get(url)
    assert response.status_code == 286  # finished: htmx stops polling
    assert b"100%" in response.content and b"READY" in response.content


def test_progress_polls_while_the_job_runs_and_stops_when_it_ends(client, world, artifacts):
    js.write_model_source(SOURCE)
    version, job = jobs.job_create_register(actor=world.alice, model=world.iris, source_prefix=SOURCE)
    client.force_login(world.alice)
    queued = client.get(reverse("job_progress", args=[job.pk]))
    assert queued.status_code == 200 and b'hx-trigger="every 1s"' in queued.content
    model_url = reverse("jobs_model_progress", args=["prod", "ml_team", "iris"])
    assert client.get(model_url).status_code == 200

    jobs.job_run(job.pk)
    done = client.get(reverse("job_progress", args=[job.pk]))
    assert done.status_code == 286 and b"hx-trigger" not in done.content
    assert done["HX-Trigger"] == "jobs-finished"
    since = client.get(model_url + "?since=0")
    assert since.status_code == 286 and b"version 3</a> is" in since.content and b"READY" in since.content

    client.force_login(world.eve)  # a reader of the model sees its version's progress
    assert client.get(_version_url("jobs_version_progress", version)).status_code == 286
    client.force_login(world.oscar)
    assert client.get(_version_url("jobs_version_progress", version)).status_code == 404
    assert client.get(model_url).status_code == 404


def test_the_files_tab_of_a_ready_version_without_files_says_so(client, world):
    """A version recorded without files (the world's, the demo content's) gets a sentence, not an
    empty card."""
    client.force_login(world.eve)
    response = client.get(reverse("version", args=["prod", "ml_team", "iris", world.v1.version]) + "?tab=files")
    assert response.status_code == 200 and "No files are recorded for this version." in response.content.decode()


def test_the_files_tab_shows_tree_checksums_and_the_parsed_mlmodel(client, world, ready):
    version, _ = ready
    client.force_login(world.eve)
    response = client.get(reverse("version", args=["prod", "ml_team", "iris", version.version]) + "?tab=files")
    html = response.content.decode()
    assert response.status_code == 200
    for path, sha in world.expected.items():
        assert path.rsplit("/", 1)[-1] in html and sha in html
    for b3 in VersionFile.objects.filter(version=version).values_list("blake3", flat=True):
        assert f"BLAKE3 {b3}" in html  # in the checksum's tooltip
    assert "metadata/" in html and "notes/" in html  # the tree's directories
    for text in ("sklearn", "python_function", "sepal_length", "tensor int64", "Input example", "5.1"):
        assert text in html


def test_a_file_downloads_as_an_attachment_never_rendered(client, world, ready, artifacts):
    version, _ = ready
    client.force_login(world.eve)
    response = client.get(_version_url("jobs_file_download", version, "metadata/notes/readme.md"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;") and "readme.md" in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"
    body = b"".join(response.streaming_content)
    assert hashlib.sha256(body).hexdigest() == world.expected["metadata/notes/readme.md"]

    for bad in ("nope.txt", "../../../../etc/passwd", "metadata/../MLmodel"):
        assert client.get(_version_url("jobs_file_download", version, "x").replace("/x", "/" + bad)).status_code == 404
    client.force_login(world.oscar)
    assert client.get(_version_url("jobs_file_download", version, "MLmodel")).status_code == 404


def test_the_whole_version_downloads_as_a_zip(client, world, ready):
    version, _ = ready
    client.force_login(world.alice)
    response = client.get(_version_url("jobs_version_zip", version))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert response["X-Content-Type-Options"] == "nosniff"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert {n: hashlib.sha256(archive.read(n)).hexdigest() for n in archive.namelist()} == world.expected


def test_copy_lists_only_owned_models_and_lands_on_the_target_model_page(client, world, ready):
    version, _ = ready
    services.version_tag_set(actor=world.alice, version=version, key="validation_status", value="approved")
    target = services.model_create(actor=world.alice, schema=world.ml_team, name="iris_prod")
    client.force_login(world.alice)
    page = client.get(_version_url("jobs_version_copy", version)).content.decode()
    assert "prod.ml_team.iris_prod" in page and "prod.ml_team.fraud" not in page
    version_page = client.get(reverse("version", args=["prod", "ml_team", "iris", version.version])).content.decode()
    assert "Copy this version" in version_page and 'value="prod.ml_team.iris_prod"' in version_page
    assert 'value="prod.ml_team.fraud"' not in version_page

    response = client.post(_version_url("jobs_version_copy", version), {"target": "prod.ml_team.iris_prod"})
    assert response.status_code == 302 and response["Location"] == reverse("model", args=["prod", "ml_team", "iris_prod"])
    copy = ModelVersion.objects.get(model=target)
    assert (copy.status, copy.copied_from_id) == (ModelVersion.PENDING, version.pk)
    assert list(copy.tags.values_list("key", "value")) == [("validation_status", "approved")]
    job = Job.objects.get(version=copy)
    assert (job.kind, job.state, job.created_by) == (Job.COPY, Job.QUEUED, world.alice)


@pytest.mark.parametrize("persona", ["admin", "alice", "gina", "eve", "tom", "oscar"])
def test_the_version_page_offers_as_copy_targets_the_models_the_user_owns(client, world, persona):
    # The version page's choice (names, SQL compiled once per kind of user) against
    # copy_targets as Django assembles it: the superuser, owners, a group's member, grantees,
    # nobody; a name with characters HTML escapes.
    from django.utils.html import escape

    services.model_create(actor=world.alice, schema=world.ml_team, name="a&b<c>")
    user = getattr(world, persona)
    expected = [m.full_name for m in jobs.copy_targets(user)]
    assert jobs.copy_target_names(user) == expected
    client.force_login(user)
    page = client.get(reverse("version", args=["prod", "ml_team", "iris", world.v2.version]))
    if page.status_code == 404:  # may not see iris
        return
    options = page.content.decode().count("<option value=")
    assert options == len(expected) and all(f'<option value="{escape(n)}">{escape(n)}</option>' in
                                            page.content.decode() for n in expected)


def test_copy_onto_a_model_the_user_does_not_own_is_refused_and_changes_nothing(client, world, ready):
    version, _ = ready
    before = ModelVersion.objects.count()
    client.force_login(world.tom)  # sees iris and fraud, owns neither
    page = client.get(_version_url("jobs_version_copy", version)).content.decode()
    assert "You own no model to copy into" in page
    response = client.post(_version_url("jobs_version_copy", version), {"target": "prod.ml_team.fraud"})
    assert response.status_code == 403 and "requires ownership" in response.content.decode()
    client.force_login(world.alice)  # cannot see fraud at all: it is not offered, and not found
    response = client.post(_version_url("jobs_version_copy", version), {"target": "prod.ml_team.fraud"})
    assert response.status_code == 400 and "Choose one of the models you own" in response.content.decode()
    with pytest.raises(Forbidden):
        jobs.job_create_copy(actor=world.tom, source_version=version, target_model=world.fraud)
    assert ModelVersion.objects.count() == before and not Job.objects.filter(kind=Job.COPY).exists()


def test_only_a_ready_version_can_be_copied(world, artifacts):
    js.write_model_source(SOURCE)
    pending, _ = jobs.job_create_register(actor=world.alice, model=world.iris, source_prefix=SOURCE)
    with pytest.raises(InvalidInput, match="Only a READY version"):
        jobs.job_create_copy(actor=world.alice, source_version=pending, target_model=world.iris)


@pytest.mark.parametrize("prefix", ["mlartifacts/../registry/versions/1", "/etc", "registry/versions/1", "mlartifacts/1/./x", ""])
def test_register_refuses_sources_outside_the_artifact_area(world, artifacts, prefix):
    before = ModelVersion.objects.count()
    with pytest.raises(InvalidInput):
        jobs.job_create_register(actor=world.alice, model=world.iris, source_prefix=prefix)
    assert ModelVersion.objects.count() == before


def test_register_needs_ownership_of_the_model(world, artifacts):
    with pytest.raises(Forbidden):
        jobs.job_create_register(actor=world.tom, model=world.iris, source_prefix=SOURCE)


def test_when_the_broker_is_down_actions_say_so_and_change_nothing(client, world, ready, broker_down):
    version, _ = ready
    services.model_create(actor=world.alice, schema=world.ml_team, name="iris_prod")
    counts = (ModelVersion.objects.count(), Job.objects.count(), VersionFile.objects.count())
    with pytest.raises(jobs.BackgroundUnavailable, match="Background work is unavailable"):
        jobs.job_create_register(actor=world.alice, model=world.iris, source_prefix=SOURCE)
    with pytest.raises(jobs.BackgroundUnavailable):
        services.version_delete(actor=world.alice, version=version)
    with pytest.raises(jobs.BackgroundUnavailable):
        services.model_delete(actor=world.alice, model=world.iris)
    client.force_login(world.alice)
    response = client.post(_version_url("jobs_version_copy", version), {"target": "prod.ml_team.iris_prod"})
    assert response.status_code == 503 and "Background work is unavailable" in response.content.decode()
    assert (ModelVersion.objects.count(), Job.objects.count(), VersionFile.objects.count()) == counts
    # Pages still browse.
    assert client.get(reverse("version", args=["prod", "ml_team", "iris", version.version]) + "?tab=files").status_code == 200
    assert client.get(reverse("jobs")).status_code == 200
    # A model without versions needs no job: it can still be deleted.
    services.model_delete(actor=world.alice, model=world.iris.__class__.objects.get(full_name="prod.ml_team.iris_prod"))


def test_deleting_from_the_pages_with_the_broker_down_says_so_and_keeps_everything(client, world, ready, broker_down):
    version, _ = ready
    client.force_login(world.alice)
    url = reverse("version_delete", args=["prod", "ml_team", "iris", version.version])
    response = client.post(url, {"confirm_name": version.full_name})
    assert response.status_code == 503 and "Background work is unavailable" in response.content.decode()
    response = client.post(reverse("model_delete", args=["prod", "ml_team", "iris"]), {"confirm_name": "prod.ml_team.iris"})
    assert response.status_code == 503
    assert ModelVersion.objects.filter(pk=version.pk).exists() and not Job.objects.filter(kind=Job.DELETE).exists()


def test_a_failed_file_removal_is_retried_then_reported(world, ready, monkeypatch, artifacts):
    version, _ = ready
    prefix = storage.version_prefix(version.pk)
    services.version_delete(actor=world.alice, version=version)
    job = Job.objects.get(kind=Job.DELETE)
    assert job.target_name == f"prod.ml_team.iris/{version.version}"

    def refuse(self, name):
        raise PermissionError(13, "Permission denied", name)

    monkeypatch.setattr(type(storage.artifact_storage()), "delete", refuse)
    published = []
    monkeypatch.setattr(jobs, "_publish", lambda job_id, countdown=None: published.append(job_id))
    for attempt in (1, 2):
        jobs.job_run(job.pk)
        job.refresh_from_db()
        assert job.state == Job.QUEUED and "retrying" in job.message and job.attempts == attempt
    jobs.job_run(job.pk)
    job.refresh_from_db()
    assert job.state == Job.FAILED and "after 3 attempts" in job.message and "model.pkl" in job.message
    assert published == [job.pk, job.pk]
    assert js.stored_files(artifacts, prefix)  # reported, not hidden


def test_the_jobs_page_lists_my_jobs_newest_first(client, world, ready, artifacts):
    version, register_job = ready
    services.version_delete(actor=world.alice, version=world.v1)
    client.force_login(world.alice)
    html = client.get(reverse("jobs")).content.decode()
    assert html.index("<strong>Delete files</strong>") < html.index("<strong>Register</strong>")
    assert f"prod.ml_team.iris/{version.version}" in html and "100%" in html
    client.force_login(world.eve)
    assert "No jobs yet" in client.get(reverse("jobs")).content.decode()
    client.logout()
    assert client.get(reverse("jobs")).status_code == 302


def test_a_claimed_job_comes_with_what_its_run_reads(world, ready, django_assert_num_queries):
    """job_claim's one read (compiled once) brings the version it makes with its model, and a
    copy's source version with its model; a job claimed twice, or gone, is None."""
    version, _ = ready
    target, job = jobs.job_create_copy(actor=world.alice, source_version=version, target_model=world.iris)
    claimed = jobs.job_claim(job.pk)
    with django_assert_num_queries(0):
        assert (claimed.version.pk, claimed.version.model.full_name) == (target.pk, world.iris.full_name)
        assert (claimed.source_version.pk, claimed.source_version.model.full_name) == (version.pk, world.iris.full_name)
        assert claimed.state == Job.RUNNING and claimed.lease and claimed.attempts == 1
    assert jobs.job_claim(job.pk) is None  # already RUNNING
    _, register = jobs.job_create_register(actor=world.alice, model=world.iris, source_prefix=SOURCE)
    claimed = jobs.job_claim(register.pk)
    with django_assert_num_queries(0):
        assert claimed.source_version is None and claimed.version.model.pk == world.iris.pk
    assert jobs.job_claim(10**9) is None


def test_a_run_whose_claim_was_taken_over_writes_nothing_more(world, artifacts):
    """Progress and the finish are written only while this run holds the lease and the job is
    RUNNING: after the sweeper requeued it (another lease), both raise LostClaim and the row
    stays as the new claim left it; a version no longer PENDING is not made READY."""
    js.write_model_source(SOURCE)
    version, job = jobs.job_create_register(actor=world.alice, model=world.iris, source_prefix=SOURCE)
    job = jobs.job_claim(job.pk)
    job.files_total, job.bytes_total, job.files_done, job.bytes_done = 3, 30, 1, 10
    jobs.job_progress(job)
    Job.objects.filter(pk=job.pk).update(lease="another run's")
    for write in (jobs.job_progress, jobs.job_finish):
        with pytest.raises(jobs.LostClaim):
            write(job)
    row = Job.objects.get(pk=job.pk)
    assert (row.state, row.lease, row.files_done, row.message) == (Job.RUNNING, "another run's", 1, "")
    Job.objects.filter(pk=job.pk).update(lease=job.lease, state=Job.QUEUED)  # the lease back, not RUNNING
    with pytest.raises(jobs.LostClaim):
        jobs.job_finish(job)
    assert Job.objects.get(pk=job.pk).state == Job.QUEUED

    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.FAILED)
    assert services.version_make_ready(version=version) is False
    assert ModelVersion.objects.get(pk=version.pk).status == ModelVersion.FAILED
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.PENDING)
    assert services.version_make_ready(version=version, signature={"inputs": "[]"}) is True
    row = ModelVersion.objects.get(pk=version.pk)
    assert (row.status, row.signature) == (ModelVersion.READY, {"inputs": "[]"})


def test_progress_writes_are_throttled(world, artifacts, monkeypatch):
    js.write_model_source(SOURCE)
    _, job = jobs.job_create_register(actor=world.alice, model=world.iris, source_prefix=SOURCE)
    job = jobs.job_claim(job.pk)
    writes = []
    real = jobs.job_progress
    monkeypatch.setattr(jobs, "job_progress", lambda j, **kw: (writes.append(1), real(j, **kw)))
    progress = jobs.Progress(job)
    progress.totals(1000, 1000 * 4096)
    for _ in range(1000):
        progress.add_bytes(4096)
        progress.file_done()
    assert len(writes) <= 3  # one for the totals, then at most one per PROGRESS_INTERVAL


@pytest.mark.parametrize("text, reason", [
    ("a: &x [1, 2]\nb: [*x, *x]\nsignature: {inputs: '[]'}\n", "aliases"),
    ("!!python/object/apply:os.system ['true']\n", "not valid YAML"),
    ("signature: !!python/object/new:os.system ['touch /tmp/pwned']\n", "not valid YAML"),
    ("flavors: !!js/function 'function () { return 1; }'\n", "not valid YAML"),
    ("- just\n- a list\n", "does not hold a mapping"),
])
def test_mlmodel_is_read_with_a_safe_loader(artifacts, text, reason):
    storage.artifact_storage().save("mlartifacts/1/x/MLmodel", js.ContentFile(text.encode()))
    with pytest.raises(jobs.JobFailed, match=reason):
        jobs.read_mlmodel("mlartifacts/1/x/MLmodel")


@pytest.mark.parametrize("size", [0, 1, storage.CHUNK - 1, storage.CHUNK, storage.CHUNK + 1,
                                  storage.FAST_CHUNK + 1, 2 * storage.FAST_CHUNK + 5])
@pytest.mark.parametrize("max_rate", [0, 10**12])
def test_a_copy_holds_the_same_bytes_and_sums_either_side_of_the_small_file_path(artifacts, size, max_rate):
    """Small files, one chunk, and several chunks read ahead into two buffers in turn (bytes
    that differ from chunk to chunk: hashing or writing a chunk from the wrong buffer shows);
    without sha256 when the caller checks by BLAKE3 alone."""
    data = random.Random(size).randbytes(size)
    storage.artifact_storage().save("mlartifacts/1/x/f.bin", js.ContentFile(data))
    b3 = blake3.blake3(data).hexdigest()
    assert storage.copy_file("mlartifacts/1/x/f.bin", "registry/versions/1/f.bin", max_rate=max_rate) == (
        size, hashlib.sha256(data).hexdigest(), b3
    )
    assert (artifacts / "registry/versions/1/f.bin").read_bytes() == data
    assert storage.copy_file("mlartifacts/1/x/f.bin", "registry/versions/2/f.bin", max_rate=max_rate,
                             sha256=False) == (size, None, b3)
    assert (artifacts / "registry/versions/2/f.bin").read_bytes() == data


@pytest.mark.parametrize("fast, threads", [(0, 1), (float("inf"), blake3.blake3.AUTO)])
def test_a_copy_hashes_on_one_thread_where_one_core_is_fast_enough_and_the_sums_are_the_same(
        artifacts, monkeypatch, fast, threads):
    """`FAST_BLAKE3` 0: every core is fast enough (one thread); infinite: none is (all cores)."""
    monkeypatch.setattr(storage, "FAST_BLAKE3", fast)
    storage._blake3_threads.cache_clear()
    try:
        assert storage._blake3_threads() == threads
        data = random.Random(7).randbytes(2 * storage.FAST_CHUNK + 5)
        storage.artifact_storage().save("mlartifacts/1/x/f.bin", js.ContentFile(data))
        assert storage.copy_file("mlartifacts/1/x/f.bin", "registry/versions/1/f.bin", sha256=False) == (
            len(data), None, blake3.blake3(data).hexdigest())
        assert (artifacts / "registry/versions/1/f.bin").read_bytes() == data
    finally:
        storage._blake3_threads.cache_clear()


@pytest.mark.parametrize("sha256", [True, False])
@pytest.mark.parametrize("kernel", ["refused", "missing"])
def test_where_the_kernel_copy_is_refused_or_missing_the_hashed_bytes_are_written(artifacts, monkeypatch, kernel,
                                                                                  sha256):
    """copy_file_range refused (EXDEV: another filesystem) or absent: the same bytes and sums."""
    import errno
    import os

    if kernel == "refused":
        def refuse(*args):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        monkeypatch.setattr(os, "copy_file_range", refuse, raising=False)
    else:
        monkeypatch.delattr(os, "copy_file_range", raising=False)
    data = random.Random(3).randbytes(2 * storage.FAST_CHUNK + 5)
    storage.artifact_storage().save("mlartifacts/1/x/f.bin", js.ContentFile(data))
    assert storage.copy_file("mlartifacts/1/x/f.bin", "registry/versions/1/f.bin", sha256=sha256) == (
        len(data), hashlib.sha256(data).hexdigest() if sha256 else None, blake3.blake3(data).hexdigest()
    )
    assert (artifacts / "registry/versions/1/f.bin").read_bytes() == data


def test_a_kernel_copy_refused_part_way_fails_the_copy(artifacts, monkeypatch):
    """The first chunk copied, the next refused: the copy fails (its job with it, files removed)
    rather than go on with bytes it hashed while the kernel was to copy them."""
    import errno
    import os

    kernel_copy, calls = os.copy_file_range, []

    def refuse_later(*args):
        calls.append(args)
        if len(calls) > 1:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return kernel_copy(*args)

    monkeypatch.setattr(os, "copy_file_range", refuse_later)
    storage.artifact_storage().save("mlartifacts/1/x/f.bin", js.ContentFile(random.Random(4).randbytes(
        2 * storage.FAST_CHUNK + 5)))
    with pytest.raises(OSError, match="cross-device"):
        storage.copy_file("mlartifacts/1/x/f.bin", "registry/versions/1/f.bin")
    assert len(calls) == 2


def test_a_source_that_changes_size_while_it_is_copied_fails_the_copy(artifacts, monkeypatch):
    """The kernel copy finds the end of the file sooner than the read that hashes the same chunk
    (the file was cut and written again meanwhile): the copy fails rather than record sums of
    bytes it did not copy."""
    import os

    kernel_copy, calls = os.copy_file_range, []

    def cut_short(*args):
        calls.append(args)
        return 0 if len(calls) == 2 else kernel_copy(*args)

    monkeypatch.setattr(os, "copy_file_range", cut_short)
    storage.artifact_storage().save("mlartifacts/1/x/f.bin", js.ContentFile(random.Random(5).randbytes(
        2 * storage.FAST_CHUNK + 5)))
    with pytest.raises(OSError, match="changed while it was copied"):
        storage.copy_file("mlartifacts/1/x/f.bin", "registry/versions/1/f.bin")


def test_a_copys_sums_are_those_of_the_bytes_it_wrote(artifacts, monkeypatch):
    """A kernel copy that wrote one byte wrong: the sums are read back from the copy, so they are
    not the source's and the job's check against the recorded ones fails (a hash of the source
    beside the copy would have vouched for bytes the copy does not hold)."""
    import os

    kernel_copy = os.copy_file_range
    data = random.Random(6).randbytes(2 * storage.FAST_CHUNK + 5)

    def faulty(src, dst, count, offset_src, offset_dst):
        n = kernel_copy(src, dst, count, offset_src, offset_dst)
        if offset_dst <= storage.FAST_CHUNK < offset_dst + n:
            os.pwrite(dst, bytes([data[storage.FAST_CHUNK] ^ 1]), storage.FAST_CHUNK)
        return n

    monkeypatch.setattr(os, "copy_file_range", faulty)
    storage.artifact_storage().save("mlartifacts/1/x/f.bin", js.ContentFile(data))
    sums = storage.copy_file("mlartifacts/1/x/f.bin", "registry/versions/1/f.bin", sha256=False)
    written = (artifacts / "registry/versions/1/f.bin").read_bytes()
    assert written != data
    assert sums == (len(data), None, blake3.blake3(written).hexdigest())
    assert sums.blake3 != blake3.blake3(data).hexdigest()


def test_the_kernel_copy_runs_ahead_of_the_hash_but_no_further_than_its_lead(artifacts, monkeypatch):
    """While the job's thread hashes the first chunk, the helper goes on copying: `AHEAD` chunks
    in all, then waits for the hash (a copy in lockstep with its hash had copied one)."""
    import os
    import time

    kernel_copy, calls = os.copy_file_range, []
    monkeypatch.setattr(os, "copy_file_range", lambda *args: (calls.append(args[3]), kernel_copy(*args))[1])
    hash_range, seen = storage._hash_range, []

    def first_waits(*args, **kwargs):
        if not seen:
            deadline = time.monotonic() + 10
            while len(calls) < storage.AHEAD and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.05)  # room for a copy beyond the lead, which must not come
            seen.append(len(calls))
        return hash_range(*args, **kwargs)

    monkeypatch.setattr(storage, "_hash_range", first_waits)
    data = random.Random(8).randbytes((storage.AHEAD + 2) * storage.FAST_CHUNK + 5)
    storage.artifact_storage().save("mlartifacts/1/x/f.bin", js.ContentFile(data))
    assert storage.copy_file("mlartifacts/1/x/f.bin", "registry/versions/1/f.bin", sha256=False) == (
        len(data), None, blake3.blake3(data).hexdigest())
    assert (artifacts / "registry/versions/1/f.bin").read_bytes() == data
    assert seen == [storage.AHEAD]
    assert [c for c in calls if c % storage.FAST_CHUNK == 0] == [i * storage.FAST_CHUNK for i in range(storage.AHEAD + 3)]


def _copy_of(world, version):
    copy, job = jobs.job_create_copy(actor=world.alice, source_version=version, target_model=world.iris)
    jobs.job_run(job.pk)
    copy.refresh_from_db()
    job.refresh_from_db()
    return copy, job


def _sums(version):
    return {f.path: (f.size, f.sha256, f.blake3) for f in VersionFile.objects.filter(version=version)}


def test_a_copy_records_the_sources_sums_and_its_bytes_have_them(world, ready, artifacts):
    version, _ = ready
    recorded = _sums(version)
    assert all(len(b3) == 64 for _, _, b3 in recorded.values())
    copy, job = _copy_of(world, version)
    assert copy.status == ModelVersion.READY, job.message
    assert _sums(copy) == recorded
    stored = artifacts / storage.version_prefix(copy.pk)
    assert {rel: (len(data := (stored / rel).read_bytes()), hashlib.sha256(data).hexdigest(),
                  blake3.blake3(data).hexdigest()) for rel in recorded} == recorded


@pytest.mark.parametrize("recorded_before_blake3", [False, True])
def test_a_copy_of_a_source_changed_on_disk_fails_and_leaves_nothing(world, ready, artifacts, recorded_before_blake3):
    """The same size, other bytes: found by BLAKE3, or by sha256 for files recorded without it."""
    version, _ = ready
    if recorded_before_blake3:
        VersionFile.objects.filter(version=version).update(blake3="")
    weights = artifacts / storage.version_prefix(version.pk) / "model.pkl"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 1
    weights.write_bytes(bytes(data))
    copy, job = _copy_of(world, version)
    assert (copy.status, job.state) == (ModelVersion.FAILED, Job.FAILED)
    assert "model.pkl does not match its recorded checksum" in job.message
    assert not VersionFile.objects.filter(version=copy).exists()
    assert js.stored_files(artifacts, storage.version_prefix(copy.pk)) == {}


def test_a_copy_of_files_recorded_before_blake3_checks_sha256_and_records_both(world, ready, artifacts):
    version, _ = ready
    VersionFile.objects.filter(version=version).update(blake3="")
    copy, job = _copy_of(world, version)
    assert copy.status == ModelVersion.READY, job.message
    stored = artifacts / storage.version_prefix(copy.pk)
    assert _sums(copy) == {rel: (size, sha, blake3.blake3((stored / rel).read_bytes()).hexdigest())
                           for rel, (size, sha, _) in _sums(version).items()}


def test_a_short_job_writes_no_progress_and_finishes_with_its_totals(world, artifacts, monkeypatch, settings):
    settings.JOBS = {**settings.JOBS, "PROGRESS_INTERVAL": 60}  # "short": it ends within one interval
    expected = js.write_model_source(SOURCE, weights_bytes=900)
    _, job = jobs.job_create_register(actor=world.alice, model=world.iris, source_prefix=SOURCE)
    writes = []
    monkeypatch.setattr(jobs, "job_progress", lambda j, **kw: writes.append(1))
    jobs.job_run(job.pk)
    job.refresh_from_db()
    assert job.state == Job.SUCCEEDED and writes == []
    assert (job.files_done, job.files_total) == (len(expected), len(expected))
    assert job.bytes_done == job.bytes_total > 900


@pytest.mark.parametrize("path", ["a\\b", "a\x00b", "a\x1fb", "a/\nb", "\tmodel/MLmodel", "a\\"])
def test_a_storage_path_with_a_backslash_or_a_control_character_is_refused(path):
    with pytest.raises(InvalidInput, match="forbidden character"):
        storage.clean_path(path)


@pytest.mark.parametrize("path, cleaned", [
    ("registry/versions/7/MLmodel", "registry/versions/7/MLmodel"),
    ("model/data file (1).pkl/", "model/data file (1).pkl"),
    ("é/ü\x7f", "é/ü\x7f"),  # DEL and anything above it is a character like any other
])
def test_a_storage_path_without_them_is_kept(path, cleaned):
    assert storage.clean_path(path) == cleaned
