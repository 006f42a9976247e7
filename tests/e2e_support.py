"""The live server the end-to-end tests drive (issue 4), a stock MLflow client run against it in a
subprocess, and a logged-in browser session for reading its pages.

`server` migrates a database of its own, creates a small world (below), and starts
`manage.py serve` (gunicorn + a Celery worker with beat) on a free port, with its own artifact
root. The database follows the run's DATABASE_URL: a fresh SQLite file, or on PostgreSQL a fresh
database on the same server, dropped afterwards. Jobs go through the real Redis on a queue of the
server's own (JOB_QUEUE), so no other worker can take them; without Redis the folder broker is
used (and CI, which always has Redis, fails instead).

The client runs in a subprocess with only the URL and credentials set, exactly as a user would:
`run_client(..., python=...)` picks the interpreter, so the same script runs with the current
mlflow of .venv and with the oldest 3.x of `make mlflow-oldest` (MLFLOW_OLDEST_PYTHON).
"""

import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from contextlib import contextmanager
from html import unescape
from pathlib import Path

import pytest

from tests.jobs_support import redis_answers

BASE = Path(__file__).resolve().parent.parent
REDIS = "redis://127.0.0.1:6379/14"

# alice creates models in prod.ml_team and staging.ml_team; eve sees the prod schema only; rita
# reads prod.ml_team (EXECUTE on the schema) but changes nothing, and has an API token
# (RITA_TOKEN); oscar holds nothing. Everyone's password is "<name>-pass-123".
RITA_TOKEN = "e2e0rita0token0000000000000000000000000a"
SETUP = """
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from registry import services
admin = User.objects.create_superuser("admin", "a@x", "admin-pass-123")
for name in ("alice", "eve", "rita", "oscar"):
    User.objects.create_user(name, f"{name}@x", f"{name}-pass-123")
Token.objects.create(user=User.objects.get(username="rita"), key="%s")
prod = services.catalog_create(actor=admin, name="prod")
team = services.schema_create(actor=admin, catalog=prod, name="ml_team")
staging = services.catalog_create(actor=admin, name="staging")
staging_team = services.schema_create(actor=admin, catalog=staging, name="ml_team")
services.grants_change(actor=admin, obj=staging, changes=[{"principal": "alice", "add": ["USE CATALOG"]}])
services.grants_change(actor=admin, obj=staging_team, changes=[{"principal": "alice",
                                                                "add": ["USE SCHEMA", "CREATE MODEL"]}])
services.grants_change(actor=admin, obj=prod, changes=[{"principal": p, "add": ["USE CATALOG"]}
                                                       for p in ("alice", "eve", "rita")])
services.grants_change(actor=admin, obj=team, changes=[{"principal": "alice", "add": ["USE SCHEMA", "CREATE MODEL"]},
                                                       {"principal": "eve", "add": ["USE SCHEMA"]},
                                                       {"principal": "rita", "add": ["USE SCHEMA", "EXECUTE"]}])
""" % RITA_TOKEN


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _database(var):
    """A DATABASE_URL of the server's own, on the engine this test run uses."""
    url = os.environ.get("DATABASE_URL") or ""
    if not url.startswith(("postgres://", "postgresql://", "pgsql://")):
        yield f"sqlite:///{var / 'db.sqlite3'}"
        return
    import psycopg

    parsed = urllib.parse.urlsplit(url)
    # Named like pytest-django's test databases, so CI's sweep of leftovers finds it too.
    name = f"test_{parsed.path.lstrip('/') or 'postgres'}_e2e_{uuid.uuid4().hex[:12]}"
    admin_url = parsed._replace(path="/postgres").geturl().replace("pgsql://", "postgresql://", 1)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield parsed._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def server(tmp_path):
    var = tmp_path / "var"
    var.mkdir()
    if redis_answers():
        broker = {"CELERY_BROKER_URL": REDIS, "JOB_QUEUE": f"e2e-{uuid.uuid4().hex[:12]}"}
    elif os.environ.get("CI"):
        pytest.fail("the end-to-end tests need Redis on 127.0.0.1:6379")
    else:
        broker = {"CELERY_BROKER_URL": "filesystem://"}
    with _database(var) as database_url:
        env = {
            **os.environ,
            **broker,
            "VAR_DIR": str(var),
            "DATABASE_URL": database_url,
            "DB_CONN_MAX_AGE": "0",
            "ARTIFACT_STORAGE": "filesystem",
            "ARTIFACT_ROOT": str(var / "artifacts"),
            "DJANGO_SETTINGS_MODULE": "catalog_explorer.settings",
            "PYTHONWARNINGS": "ignore",
        }
        manage = [sys.executable, str(BASE / "manage.py")]
        subprocess.run([*manage, "migrate", "-v0"], env=env, cwd=BASE, check=True, timeout=300)
        subprocess.run([*manage, "shell", "-c", SETUP], env=env, cwd=BASE, check=True, timeout=120,
                       stdout=subprocess.DEVNULL)
        port = _free_port()
        log_path = tmp_path / "serve.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([*manage, "serve", "--port", str(port), "--web-workers", "2"], env=env,
                                    cwd=BASE, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                url = f"http://127.0.0.1:{port}"
                _wait_until_up(url, proc, log_path)
                yield url
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
        if broker["CELERY_BROKER_URL"] == REDIS:
            import redis

            redis.Redis.from_url(REDIS).delete(broker["JOB_QUEUE"])


@contextmanager
def web_server(tmp_path, *args, env=None, setup=None, probe="/api/2.0/mlflow/no-such-endpoint"):
    """`manage.py serve --no-worker --web-workers 1` and `args`, on a free port, with a SQLite
    database of its own: (port, the path of its output) once `probe` answers; stopped afterwards.
    The database is migrated and `setup` run in `manage.py shell` when `setup` is given; without
    it nothing is (`probe`, a JSON 401 for anyone anonymous, needs no table)."""
    var = tmp_path / "var"
    var.mkdir()
    env = {**(os.environ if env is None else env), "VAR_DIR": str(var),
           "DATABASE_URL": f"sqlite:///{var / 'db.sqlite3'}", "PYTHONWARNINGS": "ignore",
           "DJANGO_SETTINGS_MODULE": "catalog_explorer.settings", "CELERY_BROKER_URL": "filesystem://"}
    manage = [sys.executable, str(BASE / "manage.py")]
    if setup is not None:
        subprocess.run([*manage, "migrate", "-v0"], env=env, cwd=BASE, check=True, timeout=300)
        subprocess.run([*manage, "shell", "-c", setup], env=env, cwd=BASE, check=True, timeout=120)
    port = _free_port()
    out_path = tmp_path / "serve.out"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen([*manage, "serve", "--no-worker", "--port", str(port), "--web-workers", "1", *args],
                                env=env, cwd=BASE, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_until_up(f"http://127.0.0.1:{port}", proc, out_path, probe)
            yield port, out_path
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


def _wait_until_up(url, proc, log_path, probe="/api/2.0/mlflow/registered-models/search"):
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}{probe}", timeout=2)
        except urllib.error.HTTPError as answer:
            assert answer.code == 401  # anonymous: nothing under the API answers without credentials
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(log_path.read_text()[-3000:]) from None
            time.sleep(0.5)


def run_client(url, user, script, tmp_path, *, python=sys.executable, token=None, args=()):
    """Run `script` with `python` as `user`; it prints `RESULT <json>`, which is returned."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": url, "PYTHONWARNINGS": "ignore",
           "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
           "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "GIT_PYTHON_REFRESH": "quiet"}
    for name in ("DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
        env.pop(name, None)
    if token:
        env["MLFLOW_TRACKING_TOKEN"] = token
    else:
        env["MLFLOW_TRACKING_USERNAME"], env["MLFLOW_TRACKING_PASSWORD"] = user, f"{user}-pass-123"
    done = subprocess.run([str(python), "-c", textwrap.dedent(script), *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout[-3000:] + done.stderr[-5000:]
    return json.loads(lines[-1][len("RESULT "):])


def oldest_python():
    """The interpreter of the venv with the oldest MLflow 3.x (`make mlflow-oldest`)."""
    path = os.environ.get("MLFLOW_OLDEST_PYTHON") or ""
    if path and Path(path).exists():
        return path
    message = (f"the oldest-MLflow venv is missing ({path or 'MLFLOW_OLDEST_PYTHON is not set'}): "
               "run `make mlflow-oldest`, or run the suite with `make test`, which creates it")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class Pages:
    """A person's browser session on the live server: logs in through the login form (CSRF
    token and cookie included) and reads pages as text."""

    def __init__(self, url, user):
        self.url = url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        form = self.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
        body = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "username": user,
                                       "password": f"{user}-pass-123"}).encode()
        request = urllib.request.Request(f"{url}/accounts/login/", data=body,
                                         headers={"Referer": f"{url}/accounts/login/"})
        with self.opener.open(request, timeout=30) as response:
            assert "/accounts/login/" not in response.url, f"{user} could not log in"

    def get(self, path):
        """The page's HTML; an HTTP error status is returned as the int."""
        try:
            with self.opener.open(f"{self.url}{path}", timeout=30) as response:
                return response.read().decode()
        except urllib.error.HTTPError as e:
            return e.code

    def text(self, path):
        """The page's visible text, whitespace collapsed (tags and scripts dropped)."""
        html = self.get(path)
        return html if isinstance(html, int) else _visible(html)

    def rows(self, path):
        """The visible text of each table row of the page."""
        html = self.get(path)
        assert not isinstance(html, int), (path, html)
        return [_visible(row) for row in re.findall(r"(?is)<tr\b.*?</tr>", html)]


def _visible(html):
    html = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", html)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())
