"""`manage.py serve` writes gunicorn's access log where WEB_ACCESS_LOG (or --access-log) says:
standard output by default, a file, or nowhere with `off`. Each case starts the real server."""

import os

import pytest

from tests.e2e_support import web_server

PROBE = "/api/2.0/mlflow/no-such-endpoint"  # a JSON 401 that needs no database


def _serve(tmp_path, log_setting):
    """Start `serve --no-worker`, ask PROBE once it answers, stop it; (its output, the file log)."""
    env = {k: v for k, v in os.environ.items() if k != "WEB_ACCESS_LOG"}
    if log_setting is not None:
        env["WEB_ACCESS_LOG"] = log_setting.replace("<tmp>", str(tmp_path))
    with web_server(tmp_path, env=env, probe=PROBE) as (_, out_path):
        pass
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
