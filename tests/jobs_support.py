"""What the job tests share: a test queue on a real Redis, real Celery worker processes pointed
at the test database, model sources written into artifact storage, and waiting for a job."""

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import connection

TEST_BROKER = os.environ.get("TEST_BROKER_URL", "redis://127.0.0.1:6379/15")
QUEUE = f"jobs-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
state = {"redis": False}


def redis_answers():
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


def use_test_queue():
    from catalog_explorer.celery import app

    if redis_answers():
        state["redis"] = True
        app.conf.broker_url = TEST_BROKER
        app.conf.broker_transport_options = {"visibility_timeout": 6 * 3600, "socket_connect_timeout": 2}
    app.conf.task_default_queue = QUEUE


def purge_test_queue(queue=QUEUE):
    if state["redis"]:
        import redis

        redis.Redis.from_url(TEST_BROKER).delete(queue)


def require_redis():
    if not state["redis"]:
        message = "the job integration tests need Redis on 127.0.0.1:6379"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def database_url():
    """The test database, as DATABASE_URL for a worker process."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    auth = quote(db.get("USER") or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


class Worker:
    """`celery worker` as a process of its own (its own process group, so SIGKILL takes all of it)."""

    def __init__(self, artifact_root, log_dir, queue=None, **env):
        self.queue = queue or QUEUE
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "DB_CONN_MAX_AGE": "0",
            "CELERY_BROKER_URL": TEST_BROKER,
            "ARTIFACT_STORAGE": "filesystem",
            "ARTIFACT_ROOT": str(artifact_root),
            "LOG_LEVEL": "INFO",
            **{k: str(v) for k, v in env.items()},
        }
        self.log = Path(log_dir) / f"worker-{uuid.uuid4().hex[:8]}.log"
        self.proc = None

    def start(self, timeout=60):
        cmd = [
            sys.executable, "-m", "celery", "-A", "catalog_explorer", "worker", "-P", "solo", "-Q", self.queue,
            "-n", f"{self.queue}-{uuid.uuid4().hex[:6]}@%h", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "-l", "info",
        ]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=settings.BASE_DIR, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"The worker exited at start:\n{self.output()}")
            if " ready." in self.output():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"The worker did not start within {timeout}s:\n{self.output()}")

    def output(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def running_worker(artifact_root, log_dir, queue=None, **env):
    worker = Worker(artifact_root, log_dir, queue, **env).start()
    try:
        yield worker
    finally:
        worker.stop()


@contextmanager
def queue_of_its_own(name):
    """Jobs published inside go to `name` (for workers no other test's worker competes with)."""
    from catalog_explorer.celery import app

    before = app.conf.task_default_queue
    app.conf.task_default_queue = name
    try:
        yield name
    finally:
        app.conf.task_default_queue = before


def wait_for(predicate, timeout=30, interval=0.1, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout}s waiting for {what}")


def wait_finished(job, timeout=60):
    from registry.models import Job

    def done():
        job.refresh_from_db()
        return job.state in (Job.SUCCEEDED, Job.FAILED)

    wait_for(done, timeout, what=f"job {job.pk} to finish (state {job.state}, {job.message!r})")
    return job


# --- Fixtures (import them into a test module) ---------------------------------------------
@pytest.fixture(scope="module")
def artifact_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture
def artifacts(artifact_dir, settings):
    """The same artifact directory for this process and its workers, emptied before each test."""
    import shutil

    for child in artifact_dir.iterdir():
        shutil.rmtree(child)
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(artifact_dir), "allow_overwrite": True},
        },
    }
    return artifact_dir


@pytest.fixture(scope="module")
def worker(artifact_dir, tmp_path_factory, django_db_setup, django_db_blocker):
    """One worker process for a module's tests (solo pool: one job at a time)."""
    require_redis()
    with running_worker(artifact_dir, tmp_path_factory.mktemp("logs")) as w:
        yield w


@pytest.fixture
def broker_down():
    """The broker does not answer (nothing listens there): actions needing a job are refused."""
    from catalog_explorer.celery import app

    before = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    yield
    app.conf.broker_url = before


def watch_model_jobs(page, timeout=40_000):
    """In a browser on a model page: follow the jobs card's progress bar until a job ends.
    Returns (the result's text, the set of bar values seen)."""
    page.wait_for_selector("#model-jobs progress")
    seen = set()
    for _ in range(300):
        seen.add(int(page.get_attribute("#model-jobs progress", "value") or 0))
        if page.query_selector("#model-jobs .job-result"):
            break
        page.wait_for_timeout(100)
    return page.wait_for_selector("#model-jobs .job-result", timeout=timeout).inner_text(), seen


# --- Model sources in artifact storage ------------------------------------------------------
SIGNATURE_YAML = {
    "inputs": json.dumps(
        [{"type": "double", "name": "sepal_length", "required": True},
         {"type": "double", "name": "sepal_width", "required": True}]
    ),
    "outputs": json.dumps([{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]),
    "params": None,
}


def mlmodel_text(signature=True):
    import yaml

    doc = {
        "artifact_path": "model",
        "flavors": {
            "python_function": {"loader_module": "mlflow.sklearn", "model_path": "model.pkl", "python_version": "3.11.9"},
            "sklearn": {"pickled_model": "model.pkl", "serialization_format": "cloudpickle", "sklearn_version": "1.5.2"},
        },
        "mlflow_version": "2.17.2",
        "model_uuid": uuid.uuid4().hex,
        "saved_input_example_info": {"artifact_path": "input_example.json", "type": "dataframe", "pandas_orient": "split"},
    }
    if signature:
        doc["signature"] = SIGNATURE_YAML
    return yaml.safe_dump(doc, sort_keys=False)


def write_model_source(prefix, *, signature=True, weights_bytes=300_000, extra_files=0):
    """An MLflow model directory under `prefix` in artifact storage. Returns {relpath: sha256}."""
    from registry.storage import artifact_storage

    files = {
        "MLmodel": mlmodel_text(signature).encode(),
        "model.pkl": os.urandom(weights_bytes),
        "conda.yaml": b"name: mlflow-env\ndependencies:\n  - python=3.11.9\n  - pip:\n    - scikit-learn==1.5.2\n",
        "requirements.txt": b"mlflow==2.17.2\nscikit-learn==1.5.2\n",
        "input_example.json": json.dumps({"columns": ["sepal_length", "sepal_width"], "data": [[5.1, 3.5]]}).encode(),
        "metadata/notes/readme.md": b"# nested file\n",
    }
    for i in range(extra_files):
        files[f"shards/part-{i:03d}.bin"] = os.urandom(weights_bytes)
    storage = artifact_storage()
    for rel, data in files.items():
        storage.save(f"{prefix}/{rel}", ContentFile(data))
    return {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}


def stored_files(root, prefix):
    """{relpath: sha256} of what is really on disk under `prefix`."""
    base = Path(root) / prefix
    if not base.exists():
        return {}
    return {
        str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest() for p in base.rglob("*") if p.is_file()
    }
