"""How many jobs a worker runs at once (JOB_CONCURRENCY, catalog_explorer/settings.py), as the
Celery app a `celery worker` starts with reads it: each case in a fresh process, as a worker
starts."""

import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings

SHOW = "from catalog_explorer.celery import app; print(app.conf.worker_concurrency)"


def _worker_conf(**env):
    inherited = {k: v for k, v in os.environ.items() if k != "JOB_CONCURRENCY"}
    result = subprocess.run([sys.executable, "-c", SHOW], capture_output=True, text=True, cwd=django_settings.BASE_DIR,
                            env={**inherited, "DJANGO_SETTINGS_MODULE": "catalog_explorer.settings", **env})
    return result.stdout.strip(), result.stderr


def test_a_worker_runs_twice_as_many_jobs_as_there_are_cores_by_default():
    shown, stderr = _worker_conf()
    assert shown == str(2 * os.cpu_count()), stderr


def test_job_concurrency_sets_it():
    assert _worker_conf(JOB_CONCURRENCY="3")[0] == "3"


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_a_concurrency_below_one_stops_the_start_with_its_name(value):
    shown, stderr = _worker_conf(JOB_CONCURRENCY=value)
    assert shown == "" and "JOB_CONCURRENCY must be" in stderr
