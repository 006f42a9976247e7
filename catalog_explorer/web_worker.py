"""gunicorn's threaded worker (`gthread`), answering a keep-alive connection's next request in
the thread that answered its last one when it comes at once.

In `gthread` each request of a keep-alive connection travels: the main thread's poller sees the
socket readable and hands the connection to a pool thread, which answers, then hands it back
through a pipe to the main thread, which registers it with the poller again. A client that asks
again right after an answer (a model server polling, a batch job, the MLflow client's successive
calls) waits for that round trip every time: the web process switched threads ~6.5 times per
request (`/proc`, voluntary switches, one client asking the no-op floor). Here, after an answer,
the pool thread waits up to `NEXT_REQUEST_WAIT` seconds for the same connection's next request
and answers it itself: 1 switch per request, the wait for the database. Otherwise, or as soon as
another connection waits for a thread, the connection goes back to the poller as in `gthread`.
On round 37's VM, one client, the two workers side by side on the same database: the no-op
floor 1.10 → 0.73 ms, a kept answer (by alias) 0.75 → 0.50 ms, the first page of 50 models
computed afresh 1.56 → 1.21 ms (benchmarks/RESULTS.md).

Each connection still gets at most one thread at a time, and a thread holds an idle connection
for at most `NEXT_REQUEST_WAIT`: with more connections than threads, a waiting one is taken up as
soon as a thread finishes its current answer or its wait. Everything else (parsing, keep-alive
timeouts, graceful shutdown, `max_requests`) is gunicorn's own.
"""

import select
import threading

from gunicorn.workers.gthread import ThreadWorker

# Long enough for a client's next request sent right after reading an answer (~0.05-0.2 ms
# here), short enough that a thread waiting in vain costs nothing noticeable.
NEXT_REQUEST_WAIT = 0.002


class KeepAliveThreadWorker(ThreadWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._waiting = 0  # connections handed to the pool that no thread has taken up yet
        self._waiting_lock = threading.Lock()

    def enqueue_req(self, conn):
        with self._waiting_lock:
            self._waiting += 1
        super().enqueue_req(conn)

    def handle(self, conn):
        # Were gunicorn ever to run `handle` other than through `enqueue_req`, the count would go
        # below zero, which reads as "someone waits": every connection back to the poller, as in
        # `gthread`, never one kept from a waiting one.
        with self._waiting_lock:
            self._waiting -= 1
        keep = super().handle(conn)
        while keep is True and self.alive and not self._waiting and _readable(conn.sock, NEXT_REQUEST_WAIT):
            keep = super().handle(conn)
        return keep


def _readable(sock, timeout):
    """Whether `sock` has data (or was closed: the next read says which) within `timeout` s."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(timeout * 1000))
