"""Copy this version in a real browser, with a real Celery worker behind it: the progress bar
on the target model's page moves to done and the new version shows READY, without a reload."""

import os
import shutil

import pytest

from registry import jobs, services
from registry.models import Job, ModelVersion
from tests import jobs_support as js
from tests.jobs_support import artifact_dir, artifacts  # noqa: F401 - fixtures

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists("/usr/bin/chromium") and not shutil.which("chromium"), reason="no Chromium"),
]

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SOURCE = "mlartifacts/3/run9/artifacts/model"


@pytest.fixture(scope="module")
def slow_worker(artifact_dir, tmp_path_factory, django_db_setup):
    """A worker copying at 1 MB/s, so the bar is seen moving."""
    js.require_redis()
    with js.queue_of_its_own(f"{js.QUEUE}-browser") as queue:
        with js.running_worker(artifact_dir, tmp_path_factory.mktemp("logs"), queue,
                               ARTIFACT_COPY_MAX_BYTES_PER_SECOND=1_000_000) as w:
            yield w


@pytest.fixture
def page(live_server, world):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
        page.base = live_server.url
        yield page
        browser.close()


def test_copy_this_version_shows_live_progress_until_ready(page, world, artifacts, slow_worker):
    js.write_model_source(SOURCE, weights_bytes=1_000_000, extra_files=2)  # ~3 MB: ~3 s at 1 MB/s
    source, job = jobs.job_create_register(actor=world.alice, model=world.iris, source_prefix=SOURCE)
    js.wait_finished(job, timeout=40)
    source.refresh_from_db()
    assert source.status == ModelVersion.READY
    target = services.model_create(actor=world.alice, schema=world.ml_team, name="iris_prod")

    page.goto(page.base + "/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "alice-pass-123")
    page.click("button[type=submit]")
    page.wait_for_url(page.base + "/")
    page.goto(f"{page.base}/explore/prod/ml_team/iris/versions/{source.version}/")

    page.click("summary:has-text('Copy this version')")
    # The form opens under the button at the page's right edge, within the window, not past it.
    box, width = page.locator(".copy-popover .popover-body").bounding_box(), page.viewport_size["width"]
    assert 0 <= box["x"] and box["x"] + box["width"] <= width, (box, width)
    page.select_option("#copy-target", "prod.ml_team.iris_prod")
    page.click(".copy-popover button:has-text('Copy')")
    page.wait_for_url(page.base + "/explore/prod/ml_team/iris_prod/")
    page.evaluate("window.__notReloaded = true")

    result, seen = js.watch_model_jobs(page, timeout=30_000)
    assert "prod.ml_team.iris_prod version 1" in result and "READY" in result
    assert int(page.get_attribute("#model-jobs progress", "value")) == 100
    assert any(0 < v < 100 for v in seen), f"the bar never showed a value between 0 and 100: {sorted(seen)}"
    # The versions table refreshes itself when the job ends: the new version is READY there too.
    page.wait_for_selector("#versions tbody tr:has-text('Version 1'):has-text('Ready')", timeout=10_000)
    assert page.evaluate("window.__notReloaded") is True
    copy = ModelVersion.objects.get(model=target)
    assert copy.status == ModelVersion.READY and copy.copied_from_id == source.pk
    assert Job.objects.get(version=copy).state == Job.SUCCEEDED
    page.wait_for_timeout(1500)  # polling stopped: no more requests change the finished card
    assert page.errors == []
    shots = os.environ.get("JOBS_SHOTS")
    if shots:
        page.goto(f"{page.base}/explore/prod/ml_team/iris_prod/versions/1/?tab=files")
        page.screenshot(path=shots + "/files.png", full_page=True)
        page.goto(f"{page.base}/explore/prod/ml_team/iris_prod/versions/1/?tab=lineage")
        page.screenshot(path=shots + "/lineage.png", full_page=True)
        page.goto(f"{page.base}/jobs/")
        page.screenshot(path=shots + "/jobs.png", full_page=True)


def test_a_pending_version_page_turns_ready_by_itself(page, world, artifacts, slow_worker):
    js.write_model_source(SOURCE, weights_bytes=1_000_000, extra_files=2)
    version, job = jobs.job_create_register(actor=world.alice, model=world.iris, source_prefix=SOURCE)
    page.goto(page.base + "/accounts/login/")
    page.fill("#id_username", "eve")  # a reader of the model watches too
    page.fill("#id_password", "eve-pass-123")
    page.click("button[type=submit]")
    page.wait_for_url(page.base + "/")
    page.goto(f"{page.base}/explore/prod/ml_team/iris/versions/{version.version}/")
    assert "Registration in progress" in page.inner_text("#main")
    page.wait_for_selector("#version-job progress")
    page.evaluate("window.__notReloaded = true")
    page.wait_for_selector(".page-head:has-text('Ready')", timeout=30_000)
    assert "Registration in progress" not in page.inner_text("#main")
    assert page.evaluate("window.__notReloaded") is True
    page.click("#main .tab:has-text('Files')")
    page.wait_for_selector("text=model.pkl")
    assert page.errors == []
