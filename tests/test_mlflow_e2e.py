"""The stock MLflow client, unchanged, against our server (issue 4; PRODUCT.md §5).

`tests/e2e_support.py` starts the live server (web + worker, Redis) on a database of its own; each
test runs the real client in a subprocess with only the URL and credentials set, exactly as a user
would, then checks what the client reported and what the pages show a logged-in person.

The same flows run with the current mlflow (.venv) and with the oldest MLflow 3.x
(`make mlflow-oldest`; marked `e2e_oldest`).
"""

import re

import pytest

from tests.e2e_support import RITA_TOKEN, Pages, oldest_python, run_client, server  # noqa: F401 — server is a fixture

pytest.importorskip("mlflow")
pytest.importorskip("sklearn")
pytestmark = pytest.mark.e2e

NAME = "prod.ml_team.iris_model"
PAGE = "/explore/prod/ml_team/iris_model/"

CLIENT = r'''
import json, os, tempfile, time
import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

out = {"mlflow": mlflow.__version__}
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
c.set_registered_model_alias(name, "Champion", "2")  # move
c.set_registered_model_alias(name, "Challenger", "2")
out["moved"] = c.get_model_version_by_alias(name, "Champion").version
out["predict_v2"] = [int(p) for p in mlflow.pyfunc.load_model(f"models:/{name}/2").predict(X.iloc[:3])]
c.set_registered_model_tag(name, "task", "classification")
c.set_model_version_tag(name, "1", "validation_status", "approved")
c.delete_model_version_tag(name, "1", "validation_status")
c.set_model_version_tag(name, "2", "reviewed_by", "data-science-guild")
c.update_registered_model(name, description="Iris *classifier*")
c.update_model_version(name, "2", description="second version, trained again")
out["search_models"] = [m.name for m in c.search_registered_models()]
out["search_tag"] = [m.name for m in c.search_registered_models(filter_string="tags.task = 'classification'")]
out["search_versions"] = sorted(v.version for v in c.search_model_versions(f"name='{name}'"))
out["search_version_tag"] = [v.version for v in c.search_model_versions("tags.reviewed_by = 'data-science-guild'")]
d = mlflow.artifacts.download_artifacts(f"models:/{name}/2", dst_path=tempfile.mkdtemp())
out["files"] = sorted(os.listdir(d))
# promotion: register into staging, then copy staging -> prod (the client creates the target) and alias it
staging = "staging.ml_team.iris_model"
sv = mlflow.register_model(f"runs:/{run.info.run_id}/model", staging)
c.set_registered_model_alias(staging, "candidate", sv.version)
copy = c.copy_model_version(f"models:/{staging}@candidate", "prod.ml_team.iris_copy")
for _ in range(240):  # copy_model_version returns at once; the copy job makes it READY: poll, as users do
    copy_status = c.get_model_version("prod.ml_team.iris_copy", copy.version).status
    if copy_status != "PENDING_REGISTRATION":
        break
    time.sleep(0.25)
out["copy"] = [sv.version, copy.version, copy_status, copy.source]
c.set_registered_model_alias("prod.ml_team.iris_copy", "Champion", copy.version)
out["copy_alias"] = c.get_model_version_by_alias("prod.ml_team.iris_copy", "Champion").version
model_uri = "models:/prod.ml_team.iris_copy@Champion"
out["predict_copy"] = [int(p) for p in mlflow.pyfunc.load_model(model_uri).predict(X.iloc[:3])]
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


def check_flows(out, pages):
    """What the client reported after CLIENT, and what alice's pages then show."""
    assert out["logged_version"] == "1" and out["v1_status"] == "READY"
    assert out["by_alias"] == "1" and out["moved"] == "2"
    assert out["predict_alias"] == out["predict_v1"] == out["predict_v2"] == [0, 0, 0]
    assert out["v2"] == ["2", "READY"]
    assert out["search_models"] == [NAME] and out["search_tag"] == [NAME]
    assert out["search_versions"] == ["1", "2"] and out["search_version_tag"] == ["2"]
    assert {"MLmodel", "requirements.txt", "python_env.yaml"} <= set(out["files"])
    assert out["copy"] == ["1", "1", "READY", "models:/staging.ml_team.iris_model/1"]
    assert out["copy_alias"] == "1" and out["predict_copy"] == [0, 0, 0]
    assert out["model"] == ["Iris *classifier*", {"task": "classification"}, {"Challenger": "2"}, ["2"]]
    assert out["deleted"] == "RESOURCE_DOES_NOT_EXIST"
    assert "signature" in out["nosig"] and "input_example" in out["nosig"], out["nosig"]
    assert out["nosig_status"] == "FAILED_REGISTRATION"

    model_html = pages.get(PAGE)
    assert "<em>classifier</em>" in model_html  # the description, rendered
    model_page = pages.text(PAGE)
    for shown in ("prod.ml_team.iris_model", "task", "classification", "Challenger"):
        assert shown in model_page, shown
    assert "Champion" not in model_page  # deleted through the client
    versions = version_rows(pages, PAGE)
    assert sorted(versions) == ["1", "2", "3"], versions
    assert "Ready" in versions["1"] and "Challenger" not in versions["1"]
    assert "Ready" in versions["2"] and "Challenger" in versions["2"]
    assert "Failed" in versions["3"]
    v2_page = pages.text(f"{PAGE}versions/2/")
    for shown in ("Ready", "Challenger", "second version, trained again", "reviewed_by", "data-science-guild",
                  "sepal length (cm)"):  # the signature the register job read from the MLmodel
        assert shown in v2_page, shown
    v1_page = pages.text(f"{PAGE}versions/1/")
    assert "Ready" in v1_page and "validation_status" not in v1_page  # the tag was deleted
    v3_page = pages.text(f"{PAGE}versions/3/")
    assert "Registration failed" in v3_page and "input_example" in v3_page
    for gone in ("/explore/prod/ml_team/iris_renamed/", "/explore/prod/ml_team/iris_copy/"):
        assert pages.get(gone) == 404
    staging = version_rows(pages, "/explore/staging/ml_team/iris_model/")
    assert list(staging) == ["1"] and "Ready" in staging["1"] and "@candidate" in staging["1"], staging


def version_rows(pages, path):
    """The versions table of a model page: {number: the row's text}."""
    return {m[1]: row for row in pages.rows(path) if (m := re.match(r"Version (\d+) ", row))}


def test_the_stock_client_works_unchanged(server, tmp_path):
    out = run_client(server, "alice", CLIENT, tmp_path)
    check_flows(out, Pages(server, "alice"))
    check_privileges(server, tmp_path)


@pytest.mark.e2e_oldest
def test_the_oldest_mlflow_3_client_works_unchanged(server, tmp_path):
    out = run_client(server, "alice", CLIENT, tmp_path, python=oldest_python())
    assert out["mlflow"].startswith("3.0."), out["mlflow"]
    check_flows(out, Pages(server, "alice"))


# --- Privileges through the same client ---------------------------------------------------------
# One client process acts as several users in turn (the client reads the credentials from the
# environment on every request): alice's view of the model, then every call of eve, oscar and
# rita (with her API token, MLFLOW_TRACKING_TOKEN), then alice's view again.
PRIVILEGES = r'''
import json, os, sys
import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

c = MlflowClient()
name = "prod.ml_team.iris_model"


def as_user(user, token=None):
    for var in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        os.environ.pop(var, None)
    if token:  # Authorization: Bearer <token>
        os.environ["MLFLOW_TRACKING_TOKEN"] = token
    else:  # HTTP basic
        os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = user, f"{user}-pass-123"


def state():
    m = c.get_registered_model(name)
    versions = {v.version: [v.status, v.description, v.tags, sorted(v.aliases)]
                for v in c.search_model_versions(f"name='{name}'")}
    return [m.name, m.description, m.tags, m.aliases, versions, sorted(x.name for x in c.search_registered_models())]


calls = {
    "get_registered_model": lambda: c.get_registered_model(name),
    "get_model_version": lambda: c.get_model_version(name, "2"),
    "get_model_version_by_alias": lambda: c.get_model_version_by_alias(name, "Challenger"),
    "get_model_version_download_uri": lambda: c.get_model_version_download_uri(name, "2"),
    "load_model": lambda: mlflow.pyfunc.load_model(f"models:/{name}/2"),
    "update_registered_model": lambda: c.update_registered_model(name, description="defaced"),
    "update_model_version": lambda: c.update_model_version(name, "2", description="defaced"),
    "set_registered_model_tag": lambda: c.set_registered_model_tag(name, "task", "defaced"),
    "delete_registered_model_tag": lambda: c.delete_registered_model_tag(name, "task"),
    "set_model_version_tag": lambda: c.set_model_version_tag(name, "2", "reviewed_by", "defaced"),
    "delete_model_version_tag": lambda: c.delete_model_version_tag(name, "2", "reviewed_by"),
    "set_registered_model_alias": lambda: c.set_registered_model_alias(name, "Challenger", "1"),
    "delete_registered_model_alias": lambda: c.delete_registered_model_alias(name, "Challenger"),
    "rename_registered_model": lambda: c.rename_registered_model(name, "prod.ml_team.stolen"),
    "create_model_version": lambda: c.create_model_version(name, "models:/" + name + "/1"),
    "copy_model_version": lambda: c.copy_model_version(f"models:/{name}/2", "prod.ml_team.my_copy"),
    "delete_model_version": lambda: c.delete_model_version(name, "1"),
    "delete_registered_model": lambda: c.delete_registered_model(name),
}


def attempts():
    out, messages = {}, {}
    for what, call in calls.items():
        try:
            call()
            out[what] = "ok"
        except MlflowException as e:
            out[what], messages[what] = e.error_code, str(e)[:500]
        except Exception as e:  # a load that fails some other way
            out[what], messages[what] = type(e).__name__, str(e)[:500]
    out["messages"] = messages
    out["search_models"] = [m.name for m in c.search_registered_models()]
    out["search_versions"] = sorted(v.version for v in c.search_model_versions(f"name='{name}'"))
    return out


as_user("alice")
result = {"before": state()}
for user in ("eve", "oscar", "rita"):
    as_user(user, token=sys.argv[1] if user == "rita" else None)
    result[user] = attempts()
as_user("alice")
result["after"] = state()
print("RESULT " + json.dumps(result))
'''

READS = ("get_registered_model", "get_model_version", "get_model_version_by_alias", "get_model_version_download_uri")
WRITES = ("update_registered_model", "update_model_version", "set_registered_model_tag",
          "delete_registered_model_tag", "set_model_version_tag", "delete_model_version_tag",
          "set_registered_model_alias", "delete_registered_model_alias", "rename_registered_model",
          "create_model_version", "delete_model_version", "delete_registered_model")


def check_privileges(url, tmp_path):
    """eve (the schema, not the model) and oscar (nothing) may not see iris_model: every call is
    RESOURCE_DOES_NOT_EXIST. rita (EXECUTE) reads and loads it, and every write is
    PERMISSION_DENIED. Afterwards alice's client and pages show exactly what they showed before."""
    page_before = Pages(url, "alice").text(PAGE)
    result = run_client(url, "alice", PRIVILEGES, tmp_path, args=[RITA_TOKEN])

    for user in ("eve", "oscar"):
        out = result[user]
        assert out.pop("search_models") == [] and out.pop("search_versions") == [], user
        messages = out.pop("messages")
        # copy_model_version reads the source version first and wraps that 404 in an error of its own
        copy = out.pop("copy_model_version"), messages["copy_model_version"]
        assert f"Registered Model with name={NAME} not found" in copy[1], copy
        assert set(out.values()) == {"RESOURCE_DOES_NOT_EXIST"}, (user, out)
        assert Pages(url, user).get(PAGE) == 404

    rita = result["rita"]
    assert rita["search_models"] == [NAME] and rita["search_versions"] == ["1", "2", "3"]
    assert {k: rita[k] for k in READS} == dict.fromkeys(READS, "ok")
    assert rita["load_model"] == "ok"
    assert {k: rita[k] for k in WRITES} == dict.fromkeys(WRITES, "PERMISSION_DENIED"), rita
    assert "requires" in rita["messages"]["update_registered_model"]  # the message names what is missing
    # rita may read the source but owns no target and may create no model in ml_team
    assert rita["copy_model_version"] == "PERMISSION_DENIED"
    rita_page = Pages(url, "rita").text(PAGE)
    assert "Challenger" in rita_page and "classification" in rita_page

    assert result["after"] == result["before"]
    assert result["before"][1:4] == ["Iris *classifier*", {"task": "classification"}, {"Challenger": "2"}]
    assert Pages(url, "alice").text(PAGE) == page_before
