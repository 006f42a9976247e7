"""Register a model from a run in a real browser, with a real Celery worker behind it: open the
run, click Register model, pick the target, watch the job's progress on the model page until
the version is READY, then see the training dataset on the version's Lineage tab."""

import os
import shutil

import pytest

from registry.models import Job, ModelVersion
from tests import jobs_support as js
from tests.jobs_support import artifact_dir, artifacts  # noqa: F401 - fixtures
from tests.runs_support import experiment_of
from tests.test_jobs_browser import page  # noqa: F401 - fixture: Chromium on the live server

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists("/usr/bin/chromium") and not shutil.which("chromium"), reason="no Chromium"),
]


@pytest.fixture(scope="module")
def slow_worker(artifact_dir, tmp_path_factory, django_db_setup):  # noqa: F811
    """A worker copying at 1 MB/s on a queue of its own, so the bar is seen moving."""
    js.require_redis()
    with js.queue_of_its_own(f"{js.QUEUE}-runs-browser") as queue:
        with js.running_worker(artifact_dir, tmp_path_factory.mktemp("logs"), queue,
                               ARTIFACT_COPY_MAX_BYTES_PER_SECOND=1_000_000) as w:
            yield w


def _login(page, username):
    page.goto(page.base + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", f"{username}-pass-123")
    page.click("button[type=submit]")
    page.wait_for_url(page.base + "/")


def test_register_model_from_a_run_shows_progress_until_ready_with_lineage(page, world, artifacts, slow_worker):  # noqa: F811
    t = experiment_of(world)
    from registry import tracking

    # ~3 MB of model files in the run's `model` folder: ~3 s at 1 MB/s.
    js.write_model_source(f"{tracking.run_artifact_prefix(t.run)}/model", weights_bytes=1_000_000, extra_files=2)

    _login(page, "alice")
    page.click(".topbar a:has-text('Experiments')")
    page.click("#experiments a:has-text('iris-training')")
    page.click(f"#runs a:has-text('{t.run.name}')")
    page.wait_for_selector("#datasets:has-text('iris_train')")

    page.click(".page-actions >> text=Register model")
    dialog = page.locator("#register-dialog")
    dialog.wait_for(state="visible")
    page.select_option("#register_source", f"runs:/{t.run.run_uuid}/model")
    page.check("#register_target_0")
    page.select_option("#register_model", "prod.ml_team.iris")
    dialog.locator("button:has-text('Register')").click()

    page.wait_for_url(page.base + "/explore/prod/ml_team/iris/#model-jobs")
    page.evaluate("window.__notReloaded = true")
    result, seen = js.watch_model_jobs(page)
    assert "prod.ml_team.iris version 3" in result and "READY" in result, result
    assert any(0 < v < 100 for v in seen), f"the bar never showed a value between 0 and 100: {sorted(seen)}"
    page.wait_for_selector("#versions tbody tr:has-text('Version 3'):has-text('Ready')", timeout=10_000)
    assert page.evaluate("window.__notReloaded") is True
    version = ModelVersion.objects.get(model=world.iris, version=3)
    assert (version.status, version.run_id) == (ModelVersion.READY, t.run.run_uuid)
    assert Job.objects.get(version=version).state == Job.SUCCEEDED

    # The version's Lineage tab shows the dataset the run trained on, and links back to the run.
    page.click("#versions a:has-text('Version 3')")
    page.click("#tab-lineage")
    table = page.wait_for_selector("[data-testid=lineage-datasets]")
    assert "iris_train" in table.inner_text() and "d1g3st42" in table.inner_text()
    page.click(f"[data-testid=lineage-run] a:has-text('{t.run.run_uuid}')")
    page.wait_for_selector("h1:has-text('train')")
    assert page.errors == []
    shots = os.environ.get("RUNS_SHOTS")
    if shots:
        page.screenshot(path=shots + "/run.png", full_page=True)
        page.goto(f"{page.base}/experiments/{t.experiment.pk}/")
        page.screenshot(path=shots + "/experiment.png", full_page=True)


def test_a_refused_registration_keeps_the_dialog_open_with_the_error(page, world, artifacts):  # noqa: F811
    t = experiment_of(world)
    _login(page, "alice")
    page.goto(f"{page.base}/experiments/{t.experiment.pk}/runs/{t.run.run_uuid}/")
    page.click(".page-actions >> text=Register model")
    page.select_option("#register_source", "path")
    page.fill("#register_path", "../../elsewhere")
    page.check("#register_target_1")
    page.select_option("#register_schema", "prod.ml_team")
    page.fill("#register_name", "from_the_browser")
    page.locator("#register-dialog button:has-text('Register')").click()
    error = page.wait_for_selector("#register-dialog #register_path-error")
    assert "leaves the artifact directory" in error.inner_text()
    assert page.locator("#register-dialog").is_visible()
    assert page.input_value("#register_name") == "from_the_browser"  # what was typed is kept
    assert not ModelVersion.objects.filter(model__name="from_the_browser").exists()


def test_the_links_the_mlflow_client_prints_lead_to_our_pages(page, world):  # noqa: F811
    """`mlflow` prints "View run at http://host/#/experiments/<id>/runs/<run>" (MLflow's UI
    routes, a fragment our server never sees): the home page follows them to our pages."""
    t = experiment_of(world)
    _login(page, "alice")
    page.goto(f"{page.base}/#/experiments/{t.experiment.pk}/runs/{t.run.run_uuid}")
    page.wait_for_url(f"{page.base}/experiments/{t.experiment.pk}/runs/{t.run.run_uuid}/")
    page.wait_for_selector(f"h1:has-text('{t.run.name}')")
    page.goto(f"{page.base}/#/models/prod.ml_team.iris/versions/2")
    page.wait_for_url(f"{page.base}/explore/prod/ml_team/iris/versions/2/")
    page.goto(f"{page.base}/#/experiments/{t.experiment.pk}")
    page.wait_for_url(f"{page.base}/experiments/{t.experiment.pk}/")
    assert page.errors == []
