"""The web server's worker (catalog_explorer/web_worker.py): a keep-alive connection's next
request answered in the thread that answered its last one, never at the expense of another
connection waiting for a thread. Each test starts the real server (`manage.py serve`)."""

import http.client
import threading

from tests.e2e_support import web_server

TOKEN = "webworker0token00000000000000000000000a"
SETUP = f"""
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
Token.objects.create(user=User.objects.create_user("wendy", "w@x", "wendy-pass-123"), key="{TOKEN}")
"""
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _get_model(conn, name):
    conn.request("GET", f"/api/2.0/mlflow/registered-models/get?name={name}", headers=AUTH)
    answer = conn.getresponse()
    return answer.status, answer.read().decode()


def test_one_connection_gets_each_request_its_own_answer_asked_at_once_or_after_a_pause(tmp_path):
    with web_server(tmp_path, "--web-threads", "2", setup=SETUP) as (port, out_path):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            local = None
            for i in range(60):
                if i % 10 == 9:
                    # Longer than the worker waits for a next request: the connection has gone
                    # back to gunicorn's poller, which must still hand it a thread.
                    threading.Event().wait(0.05)
                status, body = _get_model(conn, f"prod.ml.model_{i}")
                assert status == 404, body
                assert f"prod.ml.model_{i}" in body and f"prod.ml.model_{i}0" not in body
                if local is None:
                    local = conn.sock.getsockname()
                assert conn.sock.getsockname() == local  # the same connection throughout
        finally:
            conn.close()
    assert "Using worker: catalog_explorer.web_worker.KeepAliveThreadWorker" in out_path.read_text()


def test_a_connection_waiting_for_the_only_thread_is_answered_while_another_keeps_asking(tmp_path):
    """One thread: A asks again as soon as each answer arrives, for as long as it runs; B asks
    once meanwhile. B's answer must come within a few of A's (were the thread to stay with A
    while A keeps asking, B would wait for all of A's requests)."""
    with web_server(tmp_path, "--web-threads", "1", setup=SETUP) as (port, _):
        done, stop, errors = [0], threading.Event(), []

        def keep_asking():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                while not stop.is_set() and done[0] < 2000:
                    status, body = _get_model(conn, "prod.ml.a")
                    if status != 404:
                        errors.append((status, body))
                    done[0] += 1
            finally:
                conn.close()

        a = threading.Thread(target=keep_asking)
        a.start()
        try:
            while done[0] < 20 and a.is_alive():
                threading.Event().wait(0.005)
            asked_at = done[0]
            b = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            status, body = _get_model(b, "prod.ml.b")
            answered_at = done[0]
            b.close()
        finally:
            stop.set()
            a.join(timeout=60)
    assert status == 404 and "prod.ml.b" in body
    assert not errors
    assert answered_at < 2000  # A was still asking
    assert answered_at - asked_at < 50, (asked_at, answered_at)
