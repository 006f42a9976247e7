"""The stock MLflow client, unchanged, against our server (issue 4; PRODUCT.md §5).

The fixture migrates a fresh SQLite file, starts `manage.py serve` (gunicorn + a Celery worker)
on a free port with its own artifact root and its own filesystem broker (so no other test
session's worker can take its jobs), and the test runs the real client in a subprocess with only
the URL and credentials set — exactly as a user would.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("mlflow")
pytest.importorskip("sklearn")
pytestmark = pytest.mark.e2e

BASE = Path(__file__).resolve().parent.parent
SETUP = """
from django.contrib.auth.models import User
from registry import services
admin = User.objects.create_superuser("admin", "a@x", "admin-pass-123")
for name in ("alice", "eve", "oscar"):
    User.objects.create_user(name, f"{name}@x", f"{name}-pass-123")
prod = services.catalog_create(actor=admin, name="prod")
team = services.schema_create(actor=admin, catalog=prod, name="ml_team")
services.grants_change(actor=admin, obj=prod, changes=[{"principal": "alice", "add": ["USE CATALOG"]},
                                                       {"principal": "eve", "add": ["USE CATALOG"]}])
services.grants_change(actor=admin, obj=team, changes=[{"principal": "alice", "add": ["USE SCHEMA", "CREATE MODEL"]},
                                                       {"principal": "eve", "add": ["USE SCHEMA"]}])
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    var = tmp_path / "var"
    var.mkdir()
    env = {
        **os.environ,
        "VAR_DIR": str(var),
        "DATABASE_URL": f"sqlite:///{var / 'db.sqlite3'}",
        "ARTIFACT_ROOT": str(var / "artifacts"),
        "CELERY_BROKER_URL": "filesystem://",
        "DJANGO_SETTINGS_MODULE": "catalog_explorer.settings",
        "PYTHONWARNINGS": "ignore",
    }
    manage = [sys.executable, str(BASE / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, cwd=BASE, check=True, timeout=300)
    subprocess.run([*manage, "shell", "-c", SETUP], env=env, cwd=BASE, check=True, timeout=120,
                   stdout=subprocess.DEVNULL)
    port = _free_port()
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([*manage, "serve", "--port", str(port), "--web-workers", "2"], env=env, cwd=BASE,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/2.0/mlflow/registered-models/search", timeout=2)
        except urllib.error.HTTPError:
            break  # 401: it answers
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp_path / "serve.log").read_text()[-3000:]) from None
            time.sleep(0.5)
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


CLIENT = r'''
import json, os, tempfile, time
import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

out = {}
name = "prod.ml_team.iris_model"
X, y = load_iris(return_X_y=True, as_frame=True)
clf = LogisticRegression(max_iter=300).fit(X, y)
with mlflow.start_run() as run:
    mlflow.log_param("max_iter", 300)
    mlflow.log_metric("acc", float(clf.score(X, y)))
    mlflow.log_input(mlflow.data.from_pandas(X.assign(target=y), name="iris_train"), "training")
    info = mlflow.sklearn.log_model(clf, name="model", input_example=X.iloc[:3], registered_model_name=name)
c = MlflowClient()
out["logged_version"] = info.registered_model_version
out["v1_status"] = c.get_model_version(name, "1").status
c.set_registered_model_alias(name, "Champion", "1")
out["by_alias"] = c.get_model_version_by_alias(name, "Champion").version
out["predict_alias"] = [int(p) for p in mlflow.pyfunc.load_model(f"models:/{name}@Champion").predict(X.iloc[:3])]
out["predict_v1"] = [int(p) for p in mlflow.pyfunc.load_model(f"models:/{name}/1").predict(X.iloc[:3])]
v2 = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
out["v2"] = [v2.version, c.get_model_version(name, v2.version).status]  # the client waited for READY
c.set_registered_model_tag(name, "task", "classification")
c.set_model_version_tag(name, "1", "validation_status", "approved")
c.delete_model_version_tag(name, "1", "validation_status")
c.update_registered_model(name, description="Iris *classifier*")
c.update_model_version(name, "2", description="second")
out["search_models"] = [m.name for m in c.search_registered_models()]
out["search_tag"] = [m.name for m in c.search_registered_models(filter_string="tags.task = 'classification'")]
out["search_versions"] = sorted(v.version for v in c.search_model_versions(f"name='{name}'"))
d = mlflow.artifacts.download_artifacts(f"models:/{name}/2", dst_path=tempfile.mkdtemp())
out["files"] = sorted(os.listdir(d))
c.create_registered_model("prod.ml_team.iris_copy")
copy = c.copy_model_version(f"models:/{name}@Champion", "prod.ml_team.iris_copy")
for _ in range(240):  # copy_model_version returns at once; the copy job makes it READY: poll, as users do
    copy_status = c.get_model_version("prod.ml_team.iris_copy", copy.version).status
    if copy_status != "PENDING_REGISTRATION":
        break
    time.sleep(0.25)
out["copy"] = [copy.version, copy_status]
c.rename_registered_model("prod.ml_team.iris_copy", "prod.ml_team.iris_renamed")
c.delete_model_version("prod.ml_team.iris_renamed", "1")
c.delete_registered_model("prod.ml_team.iris_renamed")
c.delete_registered_model_alias(name, "Champion")
model = c.get_registered_model(name)
out["model"] = [model.description, model.tags, model.aliases, [v.version for v in model.latest_versions]]
try:
    c.get_registered_model("prod.ml_team.iris_renamed")
except MlflowException as e:
    out["deleted"] = e.error_code
with mlflow.start_run():  # no input_example, no signature: the register job refuses it
    try:
        mlflow.sklearn.log_model(clf, name="nosig", registered_model_name=name)
        out["nosig"] = "registered"
    except MlflowException as e:
        out["nosig"] = str(e)
out["nosig_status"] = c.get_model_version(name, "3").status
print("RESULT " + json.dumps(out))
'''

OUTSIDER = r'''
import json
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
c = MlflowClient()
out = {}
for what, call in [
    ("get", lambda: c.get_registered_model("prod.ml_team.iris_model")),
    ("update", lambda: c.update_registered_model("prod.ml_team.iris_model", description="x")),
    ("create", lambda: c.create_registered_model("prod.ml_team.mine")),
]:
    try:
        call()
        out[what] = "ok"
    except MlflowException as e:
        out[what] = e.error_code
out["search"] = [m.name for m in c.search_registered_models()]
print("RESULT " + json.dumps(out))
'''


def _client(url, user, script, tmp_path, token=None):
    env = {**os.environ, "MLFLOW_TRACKING_URI": url, "PYTHONWARNINGS": "ignore",
           "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
           "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    if token:
        env["MLFLOW_TRACKING_TOKEN"] = token
    else:
        env["MLFLOW_TRACKING_USERNAME"], env["MLFLOW_TRACKING_PASSWORD"] = user, f"{user}-pass-123"
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout[-3000:] + done.stderr[-5000:]
    return json.loads(lines[-1][len("RESULT "):])


def test_the_stock_client_works_unchanged(server, tmp_path):
    name = "prod.ml_team.iris_model"
    out = _client(server, "alice", CLIENT, tmp_path)
    assert out["logged_version"] == "1" and out["v1_status"] == "READY"
    assert out["by_alias"] == "1"
    assert out["predict_alias"] == out["predict_v1"] == [0, 0, 0]
    assert out["v2"] == ["2", "READY"]
    assert out["search_models"] == [name] and out["search_tag"] == [name]
    assert out["search_versions"] == ["1", "2"]
    assert {"MLmodel", "requirements.txt", "python_env.yaml"} <= set(out["files"])
    assert out["copy"] == ["1", "READY"]
    assert out["model"] == ["Iris *classifier*", {"task": "classification"}, {}, ["2"]]
    assert out["deleted"] == "RESOURCE_DOES_NOT_EXIST"
    assert "signature" in out["nosig"] and "input_example" in out["nosig"], out["nosig"]
    assert out["nosig_status"] == "FAILED_REGISTRATION"

    # eve sees the schema but holds no EXECUTE on the model, oscar nothing: both get 404 on reads,
    # eve a 403 on create (no CREATE MODEL), oscar a 404 (no schema he can see).
    eve = _client(server, "eve", OUTSIDER, tmp_path)
    assert eve == {"get": "RESOURCE_DOES_NOT_EXIST", "update": "RESOURCE_DOES_NOT_EXIST",
                   "create": "PERMISSION_DENIED", "search": []}
    oscar = _client(server, "oscar", OUTSIDER, tmp_path)
    assert oscar == {"get": "RESOURCE_DOES_NOT_EXIST", "update": "RESOURCE_DOES_NOT_EXIST",
                     "create": "RESOURCE_DOES_NOT_EXIST", "search": []}
