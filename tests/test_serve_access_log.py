"""`manage.py serve` writes gunicorn's access log where WEB_ACCESS_LOG (or --access-log) says:
standard output by default, a file, or nowhere with `off`. Each case starts the real server."""

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.e2e_support import _free_port

BASE = Path(__file__).resolve().parent.parent
PROBE = "/api/2.0/mlflow/no-such-endpoint"  # a JSON 401 that needs no database


def _serve(tmp_path, log_setting):
    """Start `serve --no-worker`, ask PROBE once it answers, stop it; (its output, the file log)."""
    var = tmp_path / "var"
    var.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "WEB_ACCESS_LOG"}
    env.update(VAR_DIR=str(var), DATABASE_URL=f"sqlite:///{var / 'db.sqlite3'}", PYTHONWARNINGS="ignore",
               DJANGO_SETTINGS_MODULE="catalog_explorer.settings", CELERY_BROKER_URL="filesystem://")
    if log_setting is not None:
        env["WEB_ACCESS_LOG"] = log_setting.replace("<tmp>", str(tmp_path))
    port = _free_port()
    out_path = tmp_path / "serve.out"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(BASE / "manage.py"), "serve", "--no-worker", "--port", str(port),
                                 "--web-workers", "1"], env=env, cwd=BASE, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}{PROBE}", timeout=5)
                except urllib.error.HTTPError as answer:
                    assert answer.code == 401  # anonymous: nothing under the API answers without credentials
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"serve did not answer: {out_path.read_text()[-2000:]}")
                    time.sleep(0.2)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    file_log = tmp_path / "access.log"
    return out_path.read_text(), file_log.read_text() if file_log.exists() else None


def _lines_for_probe(text):
    return [line for line in (text or "").splitlines() if f'"GET {PROBE} HTTP/1.1" 401' in line]


@pytest.mark.parametrize("setting, on_stdout, in_file", [
    (None, True, False),  # the default: standard output, as before
    ("<tmp>/access.log", False, True),
    ("off", False, False),
])
def test_access_log_goes_where_web_access_log_says(tmp_path, setting, on_stdout, in_file):
    output, file_log = _serve(tmp_path, setting)
    assert "Catalog Explorer on http://127.0.0.1" in output  # it was our server that answered
    assert bool(_lines_for_probe(output)) is on_stdout
    assert bool(_lines_for_probe(file_log)) is in_file
