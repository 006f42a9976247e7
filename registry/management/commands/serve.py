"""`manage.py serve`: the web server (gunicorn) and a Celery worker as one command.

Both run as child processes of this one; Ctrl-C (or SIGTERM) stops both, and if either exits on
its own the other is stopped too, so `make run` never leaves a half-running server behind.
"""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import NoReverseMatch, reverse

STOP_TIMEOUT = 20  # seconds a child gets to finish its work before it is killed


def _gunicorn_has(setting):
    from gunicorn.config import KNOWN_SETTINGS

    return any(s.name == setting for s in KNOWN_SETTINGS)


class Command(BaseCommand):
    help = "Start the web server (gunicorn) and a Celery worker together; Ctrl-C stops both."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST") or "127.0.0.1")
        parser.add_argument("--port", default=os.environ.get("PORT") or "8000")
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_WORKERS") or 2),
                            help="gunicorn worker processes (env WEB_WORKERS, default 2)")
        parser.add_argument("--web-threads", type=int, default=int(os.environ.get("WEB_THREADS") or 4),
                            help="threads per worker process (env WEB_THREADS, default 4)")
        parser.add_argument("--no-worker", action="store_true", help="start the web server only")
        parser.add_argument("--access-log", default=os.environ.get("WEB_ACCESS_LOG") or "-",
                            help="where gunicorn writes a line per request: '-' standard output (default), "
                                 "a file, or 'off' (env WEB_ACCESS_LOG)")

    def handle(self, *args, host, port, web_workers, web_threads, no_worker, access_log, **options):
        try:
            port = int(port)
        except ValueError:
            raise CommandError(f"PORT must be an integer, got {port!r}") from None
        bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        commands = {
            "web": [
                sys.executable, "-m", "gunicorn", "catalog_explorer.wsgi",
                "-b", bind, "-w", str(web_workers), "--graceful-timeout", "10",
                # Threads: keep-alive connections (the sync worker closes every connection, so each
                # MLflow client request paid a new TCP handshake), and a request waiting on the
                # database does not hold the whole process (benchmarks/RESULTS.md). Keep-alive
                # outlasts the client's pauses (the MLflow client waits seconds for a registration,
                # then downloads files on its pooled connections): with 5 s, a connection the
                # server closed just as the client reused it was reset, and the download failed.
                # gthread's threads, a keep-alive connection's next request answered in the thread
                # that answered the last one when it comes at once (catalog_explorer/web_worker.py).
                "--worker-class", "catalog_explorer.web_worker.KeepAliveThreadWorker",
                "--threads", str(web_threads), "--keep-alive", "75",
            ],
        }
        if access_log != "off":
            # Off behind a proxy that logs requests itself: the line costs each request 0.03-0.07
            # ms, and a saturated server 10-20 % of its throughput (benchmarks/RESULTS.md, round 14).
            commands["web"] += ["--access-logfile", access_log]
        if os.path.isdir("/dev/shm"):
            # Each worker touches a heartbeat file on every turn of its loop, so between every
            # two requests; on a disk-backed /tmp that is an inode update each time. gunicorn's
            # docs recommend shared memory for it.
            commands["web"] += ["--worker-tmp-dir", "/dev/shm"]
        if _gunicorn_has("control_socket_disable"):
            # Newer gunicorn opens a control socket at one fixed path per user; two servers on
            # one machine (two checkouts, two ports) would fight over it. We do not use it.
            commands["web"].append("--no-control-socket")
        if not no_worker:
            # -B: this one worker also runs the beat schedule (the periodic sweep of stale jobs).
            # Workers started elsewhere run without it: beat must run exactly once.
            commands["worker"] = [sys.executable, "-m", "celery", "-A", "catalog_explorer", "worker", "-B", "-l", "info"]

        self._print_banner(host, port, no_worker)
        children = {name: subprocess.Popen(cmd, cwd=settings.BASE_DIR) for name, cmd in commands.items()}

        stopping = []

        def on_signal(signum, frame):
            stopping.append(signum)

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)

        exit_code = 0
        while not stopping:
            for name, child in children.items():
                code = child.poll()
                if code is not None:
                    self.stderr.write(f"The {name} process exited with status {code}; stopping the rest.")
                    exit_code = code or 1
                    stopping.append(name)
                    break
            time.sleep(0.3)
        self._stop(children)
        if exit_code:
            sys.exit(exit_code)

    def _stop(self, children):
        for child in children.values():
            if child.poll() is None:
                child.terminate()  # gunicorn and celery both shut down gracefully on SIGTERM
        deadline = time.monotonic() + STOP_TIMEOUT
        for name, child in children.items():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"The {name} process did not stop in {STOP_TIMEOUT}s; killing it.")
                child.kill()
                child.wait()
        self.stdout.write("Stopped.")

    def _print_banner(self, host, port, no_worker):
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        base = f"http://{'[' + shown_host + ']' if ':' in shown_host else shown_host}:{port}"
        try:
            login = reverse("login")
        except NoReverseMatch:
            login = reverse("admin:login")
        manage = f"{os.path.relpath(sys.executable)} manage.py" if sys.executable else "python manage.py"
        broker = settings.CELERY_BROKER_URL.split("@")[-1]  # never print a broker password
        lines = [
            "",
            f"Catalog Explorer on {base}/",
            f"  Log in at {base}{login} (admin site: {base}{reverse('admin:index')})",
            "  as 'admin' (superuser) or the demo users 'alice' and 'bob': their passwords were printed",
            "  once, when `seed_demo` created them. Forgot one? "
            f"{manage} changepassword <username>",
            f"  Worker: {'not started (--no-worker)' if no_worker else 'celery with beat, broker ' + broker}",
            "  Ctrl-C stops everything.",
            "",
        ]
        self.stdout.write("\n".join(lines))
