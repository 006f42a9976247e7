"""Our registry against the stock `mlflow server`, side by side, over the MLflow REST API (issue 5).

    make bench                      # default: 50 models × 4 versions, a few minutes
    make bench BENCH_ARGS=--large   # 1,000 models × 100 versions for every operation

Both servers run on loopback with the same number of web processes (`--workers`, default 2):
ours production-style (gunicorn, PostgreSQL database `catalog_bench`, Redis DB 5, a Celery
worker), theirs `mlflow server` with a SQLite backend and served artifacts. One client code
drives both (keep-alive `http.client` connections); only ours gets the `Authorization` header.
Every operation is measured twice: interleaved (each request alternates between the servers, so
a noisy moment hurts both alike, but each server sits idle while the other answers, and on this
VM waking idle processes costs several ms per request) and back to back (each server alone,
requests in a row: the servers' own latency and throughput, which the targets use). Each read
is also held against the no-op floor on our server, the two alternating request by request on
one connection (a floor measured minutes apart carries the VM's drift, larger than the 1.5× it is
compared with).

Phases: warm both servers up (16 versions of a model of their own, untimed) → register the
workload (time until every version is READY) → every operation, p50/p95 and throughput for both,
ratio ours/theirs, and ours against a no-op floor → list/search after bulk-inserting rows up to
100,000 versions (and side by side with a second server of ours on a copy of the database made
before the bulk insert) → a 1 GB version's register and copy jobs against `cp` (source in the page
cache, source evicted from it, and the whole page cache dropped when run as root).
Everything it starts runs in a temporary directory and is stopped (and the database dropped) at
the end.
"""

import argparse
import hashlib
import http.client
import json
import multiprocessing
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path

import blake3

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PREFIX = "/api/2.0/mlflow/"
CATALOG = "bench.ml"


# --- HTTP ------------------------------------------------------------------------------------
class Client:
    """One keep-alive connection; reconnects when the server closed it."""

    def __init__(self, server):
        self.server = server
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)

    def call(self, method, path, params=None, body=None):
        url = PREFIX + path
        headers = dict(self.server.headers)
        data = None
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        for attempt in range(3):
            try:
                self.conn.request(method, url, body=data, headers=headers)
                response = self.conn.getresponse()
                payload = response.read()
                if response.will_close:
                    self.conn.close()
                return response.status, payload
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.CannotSendRequest, http.client.ResponseNotReady):
                self.conn.close()
                if attempt == 2:
                    raise

    def json(self, method, path, params=None, body=None, ok=(200,)):
        status, payload = self.call(method, path, params, body)
        if status not in ok:
            raise RuntimeError(f"{self.server.name} {method} {path} {params or body}: {status} {payload[:300]!r}")
        return json.loads(payload or b"{}")


class Server:
    def __init__(self, name, port, headers):
        self.name, self.port, self.headers = name, port, headers
        self.procs = []
        self.base = f"http://127.0.0.1:{port}"

    def start(self, cmd, env, log):
        out = open(log, "ab")
        self.procs.append(subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                           start_new_session=True))

    def wait_ready(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {p.returncode}; see its log")
            try:
                status, _ = Client(self).call("GET", "registered-models/search", {"max_results": 1})
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{self.name} did not answer within {timeout}s")

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=25)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- statistics --------------------------------------------------------------------------------
def pct(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def summary(lat, wall=None):
    """(p50 ms, p95 ms, requests/s); sequential throughput is requests over summed latency."""
    return (pct(lat, 0.5) * 1000, pct(lat, 0.95) * 1000, len(lat) / (wall if wall else sum(lat)))


# --- the workload ------------------------------------------------------------------------------
def model_name(i):
    return f"{CATALOG}.model_{i:04d}"


def setup_models(server, n_models):
    c = Client(server)
    for i in range(n_models):
        c.json("POST", "registered-models/create", body={
            "name": model_name(i), "tags": [{"key": "tier", "value": "gold" if i % 10 == 0 else "bronze"}],
        })


def register_versions(server, source, names, n_versions, ready_filter, threads=4):
    """Create `n_versions` versions of each of the models `names` (`threads` clients, like
    parallel training jobs) and wait until every version `ready_filter` finds is READY. Returns
    (seconds, number of versions, seconds until the last create answered). The wait polls every
    50 ms: the time until READY is known to ±25 ms (at 200 ms, a ~2 s registration's READY time
    carried up to 10 % of polling)."""
    work = [name for _ in range(n_versions) for name in names]
    lock = threading.Lock()
    errors = []

    def worker():
        c = Client(server)
        while True:
            with lock:
                if not work:
                    return
                name = work.pop(0)
            try:
                c.json("POST", "model-versions/create", body={
                    "name": name, "source": source["source"], "model_id": source["model_id"],
                    "run_id": source["run_id"],
                })
            except Exception as exc:  # reported after the join
                errors.append(exc)
                return

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    created = time.perf_counter() - started
    c = Client(server)
    total = len(names) * n_versions
    while True:
        found = c.json("GET", "model-versions/search", {"filter": ready_filter, "max_results": 10000})["model_versions"]
        ready = sum(1 for v in found if v["status"] == "READY")
        failed = [v for v in found if v["status"] == "FAILED_REGISTRATION"]
        if failed:
            raise RuntimeError(f"{server.name}: registration failed: {failed[0]['status_message']}")
        if ready >= total:
            return time.perf_counter() - started, total, created
        time.sleep(0.05)


# A model outside the workload's catalog (ours: the `scale` catalog, which the bench user owns).
WARM_UP, WARM_UP_VERSIONS = "scale.ml.warm_up", 16


def warm_up(server, source):
    """Register WARM_UP_VERSIONS versions of a model of its own, untimed, then delete it. A server
    that has just started pays one-time costs in its first requests and jobs (lazy imports, SQL
    built once per process, statements prepared once per database connection, Python's caches):
    on round 18's VM ours registered 55-80 versions/s in the first round after starting and 79-95
    in the next ones, mlflow 67 and 74-80. The timed registration measures started servers, as
    every other phase does (each follows the registration); both get the same warm-up."""
    c = Client(server)
    c.json("POST", "registered-models/create", body={"name": WARM_UP})
    register_versions(server, source, [WARM_UP], WARM_UP_VERSIONS, f"name = '{WARM_UP}'")
    c.json("DELETE", "registered-models/delete", body={"name": WARM_UP})


def set_aliases(server, n_models, n_versions):
    c = Client(server)
    for i in range(n_models):
        c.json("POST", "registered-models/alias", body={"name": model_name(i), "alias": "champion",
                                                           "version": str(n_versions)})


# The no-op floor (benchmarks/bench_urls.py) as an operation of `operations`' shape.
FLOOR_OP = ("GET", "benchmark/no-op", lambda i: {"name": model_name(0)}, True)


def operations(n_models, n_versions, big_model=None):
    """name → (method, path, function i → params or body, is_read)."""
    pick = lambda i: model_name((i * 7) % n_models)  # noqa: E731
    ops = {
        "get model": ("GET", "registered-models/get", lambda i: {"name": pick(i)}, True),
        "get version by alias": ("GET", "registered-models/alias", lambda i: {"name": pick(i), "alias": "champion"}, True),
        "search versions by name": ("GET", "model-versions/search", lambda i: {"filter": f"name = '{pick(i)}'"}, True),
        "search models, first page (100)": ("GET", "registered-models/search", lambda i: {"max_results": 100}, True),
        "search models by tag": ("GET", "registered-models/search",
                                 lambda i: {"filter": "tags.tier = 'gold'", "max_results": 100}, True),
        "set model tag": ("POST", "registered-models/set-tag",
                          lambda i: {"name": pick(i), "key": "bench", "value": str(i)}, False),
        "move alias": ("POST", "registered-models/alias",
                       lambda i: {"name": pick(i), "alias": "moving", "version": str(1 + i % n_versions)}, False),
    }
    return ops


def _alternate(turns, n, warmup, before=None, every=1):
    """`n` rounds over `turns` [(client, op)], request by request, the order flipped every round.
    [latencies per turn]. `before` (client, op), not timed, comes before every `every`-th round,
    and only the rounds right after it are timed (`every` - 1 untimed rounds follow each)."""
    lat = [[] for _ in turns]
    for i in range(-warmup, n):
        for j in range(every):
            if before is not None and j == 0:
                _call(*before, i)
            for k in (range(len(turns)) if (i + j) % 2 == 0 else reversed(range(len(turns)))):
                t0 = time.perf_counter()
                _call(*turns[k], i)
                if i >= 0 and j == 0:
                    lat[k].append(time.perf_counter() - t0)
    return lat


def _call(client, op, i):
    method, path, make, _ = op
    args = make(i)
    params, body = (args, None) if method == "GET" else (None, args)
    status, payload = client.call(method, path, params, body)
    if status != 200:
        raise RuntimeError(f"{client.server.name} {method} {path} {args}: {status} {payload[:300]!r}")


def measure_after_commits(server, read, write, floor, n, warmup=20, every=1):
    """One request (`read` for i = 0) asked again and again with a commit (`write`, not timed)
    before every `every`-th round; the read and `floor` alternate in each round, the order flipped
    every round, and only the rounds right after a commit are timed. [read latencies, floor
    latencies]. every=1: a commit before each read; after two probes in a row have found its kept
    answer stale, the read is computed without one (registry/api/read_cache.py): one statement.
    every=2: the cache's worst case, a read found stale between two found kept (so always probed
    for): each timed read probes, finds its answer stale and computes it, two statements."""
    client = Client(server)
    once = lambda op: (op[0], op[1], lambda i: op[2](0), op[3])  # noqa: E731
    return _alternate([(client, once(read)), (client, once(floor))], n, warmup, before=(client, write), every=every)


def measure(servers, op, n, warmup=20):
    """`n` requests of `op` to each server, alternating request by request. {name: latencies}."""
    lat = _alternate([(Client(s), op) for s in servers], n, warmup)
    return {s.name: v for s, v in zip(servers, lat)}


def measure_paired(server, ops, n, warmup=20):
    """`n` requests of each of `ops` to one server on one keep-alive connection, alternating
    request by request. [latencies per op], in the order given."""
    client = Client(server)
    return _alternate([(client, op) for op in ops], n, warmup)


def measure_back_to_back(servers, op, n, warmup=20, first=0):
    """`n` requests of `op` to each server alone, one after another on one keep-alive connection
    (servers taken in turn, `first` first). {name: latencies}. Unlike `measure`, no server waits
    idle between two of its requests: this is the server's own latency and throughput, without
    the wake-up of idle processes (several ms on this VM, see RESULTS.md)."""
    lat = {}
    for s in servers[first:] + servers[:first]:
        lat[s.name] = measure([s], op, n, warmup)[s.name]
    return lat


def _concurrent_worker(server, op, duration, queue):
    method, path, make, _ = op
    c = Client(server)
    lat, i = [], os.getpid()
    end = time.perf_counter() + duration
    while time.perf_counter() < end:
        i += 1
        t0 = time.perf_counter()
        status, _ = c.call(method, path, make(i) if method == "GET" else None, None if method == "GET" else make(i))
        lat.append(time.perf_counter() - t0)
        if status != 200:
            queue.put(("error", status))
            return
    queue.put(("ok", lat))


def measure_concurrent(servers, op, clients=8, duration=3.0, rounds=2):
    """`clients` processes hammering one server at a time for `duration` s, alternating servers
    for `rounds` rounds. {name: (latencies, wall seconds)}."""
    ctx = multiprocessing.get_context("fork")
    out = {s.name: ([], 0.0) for s in servers}
    for r in range(rounds):
        for s in (servers if r % 2 == 0 else servers[::-1]):
            queue = ctx.Queue()
            procs = [ctx.Process(target=_concurrent_worker, args=(s, op, duration, queue)) for _ in range(clients)]
            t0 = time.perf_counter()
            for p in procs:
                p.start()
            results = [queue.get() for _ in procs]
            for p in procs:
                p.join()
            wall = time.perf_counter() - t0
            lat, total = out[s.name]
            for kind, value in results:
                if kind == "error":
                    raise RuntimeError(f"{s.name}: concurrent {op[1]} answered {value}")
                lat.extend(value)
            out[s.name] = (lat, total + min(wall, duration))
    return out


# --- bulk rows for the 100,000-version point ----------------------------------------------------
def bulk_theirs(db_path, catalog, n_models, n_versions, source):
    """The same rows in mlflow server's SQLite tables, cloned from rows its own API wrote."""
    con = sqlite3.connect(db_path, timeout=60)
    con.row_factory = sqlite3.Row
    now = int(time.time() * 1000)

    def template(table):
        row = con.execute(f"SELECT * FROM {table} LIMIT 1").fetchone()
        return list(row.keys()), dict(row)

    rm_cols, rm = template("registered_models")
    mv_cols, mv = template("model_versions")
    tag_cols, tag = template("registered_model_tags")

    def insert(table, cols, rows):
        con.executemany(f"INSERT INTO {table} ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})",
                        ([r[c] for c in cols] for r in rows))

    names = [f"{catalog}.ml.m_{i:05d}" for i in range(n_models)]
    insert("registered_models", rm_cols, ({**rm, "name": n, "creation_time": now, "last_updated_time": now,
                                           "description": ""} for n in names))
    insert("registered_model_tags", tag_cols, ({**tag, "name": n, "key": "tier",
                                                "value": "gold" if i % 10 == 0 else "bronze"}
                                               for i, n in enumerate(names)))
    insert("model_versions", mv_cols, ({**mv, "name": n, "version": v, "creation_time": now,
                                        "last_updated_time": now, "source": source, "status": "READY"}
                                       for n in names for v in range(1, n_versions + 1)))
    con.commit()
    total = con.execute("SELECT count(*) FROM model_versions").fetchone()[0]
    con.close()
    return total


# --- printing ------------------------------------------------------------------------------------
def print_table(title, rows, names):
    ours, theirs = names
    print(f"\n{title}")
    head = (f"{'operation':36} {ours + ' p50':>10} {'p95':>8} {'req/s':>8}   {theirs + ' p50':>10} {'p95':>8}"
            f" {'req/s':>8}   {'thr x':>6}")
    print(head)
    print("-" * len(head))
    for name, a, b in rows:
        ratio = a[2] / b[2] if b else float("nan")
        bcols = f"{b[0]:10.2f} {b[1]:8.2f} {b[2]:8.0f}" if b else f"{'-':>10} {'-':>8} {'-':>8}"
        print(f"{name:36} {a[0]:10.2f} {a[1]:8.2f} {a[2]:8.0f}   {bcols}   {ratio:6.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--large", action="store_true", help="1,000 models × 100 versions (bulk rows) for every operation")
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--versions", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="web processes of each server")
    parser.add_argument("-n", "--requests", type=int, default=200, help="measured requests per operation and server")
    parser.add_argument("--copy-mb", type=int, default=1024, help="size of the big version (0: skip the copy test)")
    parser.add_argument("--skip-scale", action="store_true", help="skip the 100,000-version point")
    parser.add_argument("--database", default="catalog_bench")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--gunicorn-args", default=None, help="override GUNICORN_CMD_ARGS for our web server")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory and database")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="catalog-bench-"))
    print(f"# bench_api {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC · {os.cpu_count()} CPUs · "
          f"workers={args.workers} · temp {tmp}")
    new_database(args, args.database)
    env = {**os.environ, "DATABASE_URL": f"{args.pg}/{args.database}", "REDIS_URL": args.redis,
           "VAR_DIR": str(tmp / "ours"), "SECRET_KEY": "benchmark-only-" + os.urandom(8).hex(), "DEBUG": "false",
           "LOG_LEVEL": "WARNING", "JOB_SWEEP_SECONDS": "3600",
           "DJANGO_SETTINGS_MODULE": "benchmarks.bench_settings"}  # + the no-op floor's route
    env.pop("MLFLOW_TRACKING_TOKEN", None)
    if args.gunicorn_args is not None:
        env["GUNICORN_CMD_ARGS"] = args.gunicorn_args
    (tmp / "ours" / "staticfiles").mkdir(parents=True)
    py = str(BIN / "python")
    subprocess.run([py, "manage.py", "migrate", "-v", "0"], env=env, cwd=ROOT, check=True)
    token = ours_admin(env, "setup")
    ours = Server("ours", free_port(), {"Authorization": f"Bearer {token}"})
    theirs = Server("mlflow", free_port(), {})
    servers = [ours, theirs]
    try:
        ours.start([py, "manage.py", "serve", "--port", str(ours.port), "--web-workers", str(args.workers)],
                   env, tmp / "ours.log")
        theirs.start([str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(theirs.port),
                      "--workers", str(args.workers), "--backend-store-uri", f"sqlite:///{tmp}/mlflow.db",
                      "--serve-artifacts", "--artifacts-destination", str(tmp / "mlartifacts")],
                     {k: v for k, v in env.items() if k not in ("DATABASE_URL",)}, tmp / "mlflow.log")
        for s in servers:
            s.wait_ready()
        run_benchmark(args, tmp, env, ours, theirs)
    finally:
        for s in [*servers, *(copy for copy, _ in STARTED)]:
            s.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
            for database in [args.database, *(name for _, name in STARTED)]:
                drop_database(args, database)


def log_model(server, experiment="benchmark"):
    env = {**os.environ, "MLFLOW_TRACKING_URI": server.base}
    env.pop("MLFLOW_TRACKING_TOKEN", None)
    auth = server.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        env["MLFLOW_TRACKING_TOKEN"] = auth.split(" ", 1)[1]
    out = subprocess.run([str(BIN / "python"), str(ROOT / "benchmarks" / "log_model.py"), experiment], env=env,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_benchmark(args, tmp, env, ours, theirs):
    servers = [ours, theirs]
    names = [s.name for s in servers]
    n_models, n_versions = args.models, args.versions
    sources = {s.name: log_model(s) for s in servers}

    # 1. Registration: time until every version is READY.
    reg, answered = {}, {}
    for s in servers:
        warm_up(s, sources[s.name])
    for s in servers:
        setup_models(s, n_models)
        seconds, count, created = register_versions(s, sources[s.name], [model_name(i) for i in range(n_models)],
                                                    n_versions, f"name LIKE '{CATALOG}.%'")
        reg[s.name] = (seconds, count)
        answered[s.name] = created
        set_aliases(s, n_models, n_versions)
    print(f"\nRegistration of {n_models} × {n_versions} versions from one logged model (4 client threads),"
          f" until all READY (each server warmed up first: {WARM_UP_VERSIONS} versions of a model of its own,"
          f" untimed)")
    for name, (seconds, count) in reg.items():
        kind = "copy + sha256 jobs" if name == "ours" else "metadata only"
        print(f"  {name:8} {seconds:7.2f} s   {count / seconds:7.1f} versions/s   ({kind}; the last create "
              f"answered at {answered[name]:.2f} s)")
    print(f"  ratio ours/mlflow (versions/s): {reg[theirs.name][0] / reg[ours.name][0]:.2f}")
    analyze(env)

    if args.large:
        print("\nBulk rows for --large: 1,000 models × 100 versions in each server's tables…")
        _bulk(tmp, env, 1000, 100, sources)

    # 2. Every operation, interleaved.
    ops = operations(n_models, n_versions)
    # The floor: the same stack (middleware, DRF, token auth, JSON answer) with no registry code
    # (benchmarks/bench_urls.py). Each read is held against the floor measured with it, the two
    # alternating request by request on our server: measured even right after the read, the
    # floor moved 1.03–1.79 ms within one run on round 13's VM (once per run, 1.06–2.48 ms on
    # round 12's), more than the 1.5× it is compared with. The floor measured right after the
    # read is still printed beside it.
    floor_op = FLOOR_OP
    # Our answers to a repeated read come from memory while nothing has committed since
    # (registry/api/read_cache.py); `Cache-Control: no-cache` has every read computed afresh, as
    # when anything committed since the same request was last answered. Printed beside.
    fresh_server = Server(ours.name, ours.port, {**ours.headers, "Cache-Control": "no-cache"})
    rows, b2b_rows = [], []
    results, b2b, floors, paired, fresh, stale, stale_other = {}, {}, {}, {}, {}, {}, {}
    for index, (name, op) in enumerate(ops.items()):
        lat = measure(servers, op, args.requests)
        results[name] = {k: summary(v) for k, v in lat.items()}
        rows.append((name, results[name]["ours"], results[name]["mlflow"]))
        lat = measure_back_to_back(servers, op, args.requests, first=index % 2)
        b2b[name] = {k: summary(v) for k, v in lat.items()}
        b2b_rows.append((name, b2b[name]["ours"], b2b[name]["mlflow"]))
        if op[3]:
            floors[name] = summary(_floor(ours, floor_op, args.requests, 20, 200))
            paired[name] = [summary(lat) for lat in measure_paired(ours, [op, floor_op], args.requests)]
            fresh[name] = [summary(lat) for lat in measure_paired(fresh_server, [op, floor_op], args.requests)]
            fresh[name].append(summary(measure([fresh_server], op, args.requests)[ours.name]))
            stale[name] = [summary(lat) for lat in measure_after_commits(ours, op, ops["set model tag"], floor_op,
                                                                          args.requests)]
            stale_other[name] = [summary(lat) for lat in measure_after_commits(
                ours, op, ops["set model tag"], floor_op, args.requests // 2, every=2)]
    conc = measure_concurrent(servers, ops["get version by alias"])
    fresh_conc = summary(*measure_concurrent([fresh_server], ops["get version by alias"])[ours.name])
    results["8 clients: get version by alias"] = {k: summary(lat, wall) for k, (lat, wall) in conc.items()}
    rows.append(("8 clients: get version by alias", results["8 clients: get version by alias"]["ours"],
                 results["8 clients: get version by alias"]["mlflow"]))
    # The floor once more on its own, and, as the floor was before round 9, an unknown endpoint.
    floor = summary(_floor(ours, floor_op, args.requests, 20, 200))
    old_floor = summary(_floor(ours, ("GET", "benchmark/unknown", floor_op[2], True), args.requests, 20, 404))
    # Below the floor: the server and Django alone, then with one database round trip.
    bare = summary(_floor(ours, ("GET", "benchmark/bare", floor_op[2], True), args.requests, 20, 200))
    one_query = summary(_floor(ours, ("GET", "benchmark/one-query", floor_op[2], True), args.requests, 20, 200))
    scale = f"{n_models} × {n_versions}" if not args.large else "1,000 × 100 (+ workload)"
    print_table(f"MLflow REST operations, {scale} versions, interleaved (request by request between the two "
                f"servers); latency ms, throughput req/s; thr x = ours/mlflow", rows, names)
    print_table(f"The same, back to back (each server alone, one client, {args.requests} requests in a row)",
                b2b_rows, names)
    print(f"\nNo-op floor on our stack, back to back (GET {PREFIX}benchmark/no-op: middleware + DRF + token"
          f" auth + JSON {{}}): p50 {floor[0]:.2f} ms, p95 {floor[1]:.2f} ms, {floor[2]:.0f} req/s"
          f"\n  (an unknown endpoint's JSON 404, the floor before round 9: p50 {old_floor[0]:.2f} ms)"
          f"\n  below it: a plain Django view, no DRF, no token, no query (gunicorn + API middleware): p50 "
          f"{bare[0]:.2f} ms; the same with one PostgreSQL round trip (SELECT 1): p50 {one_query[0]:.2f} ms")
    print("  each read against the floor, the two alternating request by request (p50 ms; the target);"
          "\n  in brackets the back-to-back read against a floor measured right after it:")
    for name, op in ops.items():
        if op[3]:
            (read, _, _), (f, _, _) = paired[name]
            after = floors[name][0]
            print(f"  {name:36} {read:5.2f} / {f:.2f} = {read / f:.2f}"
                  f"   [{b2b[name]['ours'][0]:.2f} / {after:.2f} = {b2b[name]['ours'][0] / after:.2f}]")
    print("\nReads computed afresh (ours with Cache-Control: no-cache: the read alone, its token and snapshot"
          "\nin its statement, no probe), as when anything has committed since the same request was last"
          "\nanswered and the web process has seen a newer snapshot since; thr x against mlflow back to"
          "\nback above, × floor alternating with the floor as above")
    for name, op in ops.items():
        if op[3]:
            (read, _, _), (f, _, _), alone = fresh[name]
            print(f"  {name:36} p50 {alone[0]:5.2f} ms   thr {alone[2] / b2b[name]['mlflow'][2]:4.1f}×"
                  f"   {read:5.2f} / {f:.2f} = {read / f:.2f}× floor")
    for rows_, title in (
        (stale, "\nA commit (set tag) before each repetition of one request: after two probes in a row found its"
                "\nkept answer stale, each read is computed without one (one statement); p50, thr x from the"
                "\nreads' own latencies, × floor alternating with the floor after each commit"),
        (stale_other, "\nThe worst case: a commit before every second repetition, so the request is always probed for"
                      "\nand each read after a commit probes, finds its kept answer stale and computes it (two"
                      "\nstatements); those reads timed, as above"),
    ):
        print(title)
        for name, op in ops.items():
            if op[3]:
                (read, _, thr), (f, _, _) = rows_[name]
                print(f"  {name:36} p50 {read:5.2f} ms   thr {thr / b2b[name]['mlflow'][2]:4.1f}×"
                      f"   {read:5.2f} / {f:.2f} = {read / f:.2f}× floor")
    mlflow_conc = results["8 clients: get version by alias"]["mlflow"][2]
    print(f"  {'8 clients: get version by alias':36} {fresh_conc[2]:7.0f} req/s   thr {fresh_conc[2] / mlflow_conc:4.1f}×")
    check_targets(results, b2b, reg, paired, ops)

    # 3. List/search at the workload size and at 100,000 versions.
    if not args.skip_scale and not args.large:
        scale_ops = {k: ops[k] for k in ("search versions by name", "search models, first page (100)",
                                         "search models by tag")}
        # The two rows above return more at 100,000 versions (100 models instead of 50, 105 gold
        # models instead of 5): these two return the same answer at both sizes, so they show how
        # the time grows with the tables alone.
        scale_ops["search models, page of 20"] = ("GET", "registered-models/search", lambda i: {"max_results": 20}, True)
        scale_ops["search models by tag, one catalog"] = (
            "GET", "registered-models/search",
            lambda i: {"filter": f"name LIKE '{CATALOG.split('.')[0]}.%' AND tags.tier = 'gold'", "max_results": 100},
            True,
        )
        # Ours computed afresh (no-cache): how the statements grow with the tables, not the cache.
        scale_servers = [fresh_server, theirs]
        # Interleaved (as before round 24), and ours back to back: interleaved, each request wakes
        # a server that sat idle while the other answered, several ms of noise on this VM
        # (the small point moved 1.8-3.3 ms run to run), which hid how the statement grows.
        small = {k: {n: summary(v) for n, v in measure(scale_servers, op, args.requests // 2).items()}
                 for k, op in scale_ops.items()}
        small_b2b = {k: summary(measure([fresh_server], op, args.requests // 2)[ours.name]) for k, op in scale_ops.items()}
        small_idle = _floor_beside(fresh_server, floor_op, theirs, scale_ops[HEAVIEST], args.requests // 2)
        # The no-op floor right after each point's reads: the VM's own speed moves between the two
        # points, minutes apart (round 33: within one run the floor took 1.48-2.26 ms), and
        # reads whose answer does not grow with the tables move with it.
        small_floor = summary(_floor(fresh_server, floor_op, args.requests // 2, 20, 200))
        before = n_models * n_versions
        m_big = max(1, (100_000 - before) // 100)
        # A copy of our database as it is now, served by a second server of ours (web processes
        # only), for the two sizes side by side below, request by request: minutes apart, the
        # VM's own speed moved 1.47-1.48× between the points in some runs (the floor measured
        # with each), more than the 1.5× the target allows the tables' growth.
        small_server = start_copy(args, tmp, env, fresh_server, f"{args.database}_small")
        totals = _bulk(tmp, env, m_big, 100, sources)
        large = {k: {n: summary(v) for n, v in measure(scale_servers, op, args.requests // 2).items()}
                 for k, op in scale_ops.items()}
        large_b2b = {k: summary(measure([fresh_server], op, args.requests // 2)[ours.name]) for k, op in scale_ops.items()}
        large_idle = _floor_beside(fresh_server, floor_op, theirs, scale_ops[HEAVIEST], args.requests // 2)
        large_floor = summary(_floor(fresh_server, floor_op, args.requests // 2, 20, 200))
        side = {k: {n: summary(v) for n, v in measure([small_server, fresh_server], op, args.requests // 2).items()}
                for k, op in scale_ops.items()}
        side_floor = {n: summary(v) for n, v in measure([small_server, fresh_server], floor_op, args.requests // 2).items()}
        small_server.stop()
        print(f"\nList/search p50 ms at {before:,} versions vs {totals['ours']:,} versions "
              f"({n_models} → {n_models + m_big:,} models), ours computed afresh (no-cache); target ours ≤ 1.5×")
        print(f"{'operation':36} {'ours small':>10} {'ours large':>10} {'x':>6}   {'mlflow small':>12} "
              f"{'mlflow large':>12} {'x':>6}   {'ours back to back: small':>24} {'large':>6} {'x':>6}")
        for k in scale_ops:
            a, b = small[k], large[k]
            c, d = small_b2b[k][0], large_b2b[k][0]
            print(f"{k:36} {a['ours'][0]:10.2f} {b['ours'][0]:10.2f} {b['ours'][0] / a['ours'][0]:6.2f}   "
                  f"{a['mlflow'][0]:12.2f} {b['mlflow'][0]:12.2f} {b['mlflow'][0] / a['mlflow'][0]:6.2f}   "
                  f"{c:24.2f} {d:6.2f} {d / c:6.2f}")
        print(f"{'no-op floor, back to back':36} {'':10} {'':10} {'':6}   {'':12} {'':12} {'':6}   "
              f"{small_floor[0]:24.2f} {large_floor[0]:6.2f} {large_floor[0] / small_floor[0]:6.2f}"
              f"   (the VM's speed between the two points)")
        print(f"{'no-op floor, interleaved with mlflow':36} {small_idle[0]:10.2f} {large_idle[0]:10.2f} "
              f"{large_idle[0] / small_idle[0]:6.2f}   (ours idle while mlflow answers its {HEAVIEST!r}: "
              f"p50 {small_idle[1]:.1f} → {large_idle[1]:.1f} ms)")
        print(f"\nThe same at both sizes at once: ours at {before:,} versions (a second server of ours on a copy of "
              f"the database made\nbefore the bulk insert) and ours at {totals['ours']:,}, request by request; "
              f"p50 ms, computed afresh (no-cache); target ≤ 1.5×")
        print(f"{'operation':36} {'small':>10} {'large':>10} {'x':>6}")
        for k, row in [*side.items(), ("no-op floor", side_floor)]:
            a, b = row[small_server.name][0], row[fresh_server.name][0]
            print(f"{k:36} {a:10.2f} {b:10.2f} {b / a:6.2f}")
        worst = max(side, key=lambda k: side[k][fresh_server.name][0] / side[k][small_server.name][0])
        x = side[worst][fresh_server.name][0] / side[worst][small_server.name][0]
        print(f"  {'MET ' if x <= 1.5 else 'MISS'} list/search at {totals['ours']:,} versions ≤ 1.5× at {before:,}, "
              f"side by side: at most {x:.2f}× ({worst})")

    # 4. Copy throughput: a 1 GB version against cp on the same disk.
    if args.copy_mb:
        copy_benchmark(args, tmp, env, ours)


# The scale comparison's heaviest read at 100,000 versions on mlflow server (73 ms there, 10 ms at 200).
HEAVIEST = "search models by tag"


def _floor_beside(server, floor_op, other, other_op, n, warmup=20):
    """Our no-op floor interleaved with `other`'s `other_op`, as the reads of the interleaved scale
    table are: (our p50 ms, `other_op`'s p50 ms). Our server sits idle while the other answers,
    and on these VMs a process woken after idling costs more the longer it idled (round 37:
    the floor 0.99 ms back to back, 1.67 after 10 ms idle, 3.37 after 70), so that table's
    growth includes mlflow's own growth; this row shows how much."""
    lat = _alternate([(Client(server), floor_op), (Client(other), other_op)], n, warmup)
    return summary(lat[0])[0], summary(lat[1])[0]


def _floor(server, op, n, warmup, expected):
    c = Client(server)
    lat = []
    for i in range(-warmup, n):
        t0 = time.perf_counter()
        status, _ = c.call("GET", op[1], op[2](i))
        if status != expected:
            raise RuntimeError(f"{op[1]} answered {status}")
        if i >= 0:
            lat.append(time.perf_counter() - t0)
    return lat


def analyze(env):
    """ANALYZE our database, as PostgreSQL's autovacuum does on a running server soon after
    tables change. Where autovacuum is off (this machine's PostgreSQL), the workload's tables
    would otherwise never get statistics and every plan would rest on default guesses — while
    the 100,000-version point, analyzed after its bulk insert, would not: the two points of the
    scale comparison were measured unlike each other before round 12."""
    subprocess.run([str(BIN / "python"), "manage.py", "shell", "-v", "0", "-c",
                    "from django.db import connection; connection.cursor().execute('ANALYZE')"],
                   env=env, cwd=ROOT, check=True)


def _bulk(tmp, env, n_models, n_versions, sources):
    t0 = time.perf_counter()
    out = ours_admin(env, "bulk", "scale", n_models, n_versions, sources["ours"]["source"])
    total_ours = int(out.splitlines()[-1])
    analyze(env)
    total_theirs = bulk_theirs(tmp / "mlflow.db", "scale", n_models, n_versions, sources["mlflow"]["source"])
    print(f"  bulk-inserted {n_models * n_versions:,} versions into each in {time.perf_counter() - t0:.0f} s "
          f"(ours {total_ours:,}, mlflow {total_theirs:,} versions in all)")
    return {"ours": total_ours, "mlflow": total_theirs}


def check_targets(results, b2b, reg, paired, ops):
    """Throughput and p50 from the back-to-back run (the servers' own figures), the interleaved
    run's in brackets; the floor ratio from the read and the floor measured alternating."""
    print("\nTargets (back to back; interleaved in brackets)")
    for name, op in ops.items():
        o, t = b2b[name]["ours"], b2b[name]["mlflow"]
        io, it = results[name]["ours"], results[name]["mlflow"]
        if op[3]:
            (read, _, _), (floor, _, _) = paired[name]
            ok = o[2] >= 5 * t[2] and o[0] <= 3.0 and read <= 1.5 * floor
            print(f"  {'MET ' if ok else 'MISS'} {name}: thr {o[2] / t[2]:.1f}× [{io[2] / it[2]:.1f}×] (≥5), "
                  f"p50 {o[0]:.2f} ms [{io[0]:.2f}] (≤3), {read / floor:.2f}× floor (≤1.5)")
        else:
            ok = o[2] >= 2 * t[2]
            print(f"  {'MET ' if ok else 'MISS'} {name}: thr {o[2] / t[2]:.1f}× [{io[2] / it[2]:.1f}×] (≥2)")
    o, t = results["8 clients: get version by alias"]["ours"], results["8 clients: get version by alias"]["mlflow"]
    print(f"  {'MET ' if o[2] >= 5 * t[2] else 'MISS'} 8 clients by alias: thr {o[2] / t[2]:.1f}× (≥5)")
    rate = {k: c / s for k, (s, c) in reg.items()}
    print(f"  {'MET ' if rate['ours'] >= rate['mlflow'] else 'MISS'} registration: {rate['ours']:.1f} vs "
          f"{rate['mlflow']:.1f} versions/s (≥1×)")


def start_copy(args, tmp, env, server, database):
    """A second server of ours (`manage.py serve --no-worker`, as many web processes) on a copy of
    `server`'s database as it is now, named `database`, asking with `server`'s headers (the
    copy holds the same token); dropped again when the benchmark ends."""
    copy = Server(f"{server.name} (copy)", free_port(), server.headers)
    STARTED.append((copy, database))
    new_database(args, database)
    dump = subprocess.run(["pg_dump", "--no-owner", f"{args.pg}/{args.database}"], check=True, capture_output=True)
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", f"{args.pg}/{database}"], input=dump.stdout, check=True,
                   capture_output=True)
    copy_env = {**env, "DATABASE_URL": f"{args.pg}/{database}"}
    analyze(copy_env)
    copy.start([str(BIN / "python"), "manage.py", "serve", "--no-worker", "--port", str(copy.port),
                "--web-workers", str(args.workers)], copy_env, tmp / "ours-copy.log")
    copy.wait_ready()
    return copy


STARTED = []  # (server, database) of `start_copy`, for `main` to stop and drop


def drop_database(args, name):
    """Drop PostgreSQL database `name` if it exists, whoever is connected to it."""
    import psycopg

    with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def new_database(args, name):
    """PostgreSQL database `name`, empty (dropped first if it exists)."""
    import psycopg

    drop_database(args, name)
    with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')


def ours_admin(env, *args):
    """`benchmarks/ours_admin.py` with our server's settings: its standard output, stripped."""
    return subprocess.run([str(BIN / "python"), "benchmarks/ours_admin.py", *map(str, args)], env=env, cwd=ROOT,
                          check=True, capture_output=True, text=True).stdout.strip()


DROP_CACHES = Path("/proc/sys/vm/drop_caches")
COPY_ROUNDS = 5  # copy jobs and `cp`s per page-cache mode (the median of 3 moved with one slow spell)


def prime_memory(source):
    """Touch and free twice the size of `source`'s files in memory, so that the copy that follows
    writes into pages the VM holds. On these VMs (Firecracker, virtio-balloon free page
    reporting) memory freed for about two seconds is handed back to the host, and the next
    write into it costs a fault in the host for each page: `cp` of 1 GiB took 1.1-4.8 s, all of
    it system time, into such memory, against 0.27 s into pages freed just before. Without
    this, whichever copy happened to come after a pause paid it (the register job and the
    first copy job after it: 2.6-3.1 s in every run); the job and `cp` get the same."""
    size = 2 * sum(f.stat().st_size for f in Path(source).rglob("*") if f.is_file())
    block = bytearray(size)  # calloc'd: untouched until written
    block[::4096] = b"\1" * len(range(0, size, 4096))
    del block


def settle(mode, source):
    """Before each timed copy: no dirty pages left by the previous one (each copy pays for its own
    writes only) and then, by `mode`: "warm" leaves the page cache as it is (the source in it);
    "cold source" evicts the source's files from it (posix_fadvise DONTNEED: they are read from
    the disk, as a version nobody read lately is, by servers that are running); "cold machine"
    drops the whole page cache, every process's code included (needs root; returns False where
    it is not allowed). In every mode the memory the copy will write into is held first
    (`prime_memory`)."""
    os.sync()
    prime_memory(source)
    if mode == "cold source":
        for path in Path(source).rglob("*"):
            if path.is_file():
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)
    elif mode == "cold machine":
        try:
            DROP_CACHES.write_text("3\n")
        except OSError:
            return False
    return True


def copy_benchmark(args, tmp, env, ours):
    """A 1 GB version: its register job, then copy jobs (`models:/<name>/<v>`) against `cp -r` of
    the same files on the same disk, each after `settle`: with the source in the page cache
    (warm), with the source's files evicted from it (cold source) and, as root, with the whole
    page cache dropped (cold machine). The register job computes sha256 and BLAKE3; a copy job
    checks its source by the recorded BLAKE3 alone."""
    size = args.copy_mb << 20
    big = log_model(ours, "benchmark-big")
    directory = Path(ours_admin(env, "bigfile", big["model_id"], size))
    c = Client(ours)
    c.json("POST", "registered-models/create", body={"name": f"{CATALOG}.big"})
    c.json("POST", "registered-models/create", body={"name": f"{CATALOG}.big_copy"})

    def until_ready(name, version):
        while True:
            v = c.json("GET", "model-versions/get", {"name": name, "version": version})["model_version"]
            if v["status"] == "READY":
                return
            if v["status"] != "PENDING_REGISTRATION":
                raise RuntimeError(v["status_message"])
            # The job's end is read from its row (`job`): a slow poll does not blur it, nor takes
            # the CPU the job runs on (a 10 ms poll slowed a 0.3 s copy by ~0.07 s on 2 cores).
            time.sleep(0.1)

    def job(name, source):
        """A register or copy job, from the API call until the worker finished it (stamped in the
        transaction that makes the version READY), read from the job's row once READY: (those
        seconds, the seconds the worker ran it, the version's number, its files' directory, the
        seconds until the create answered, and from then until the worker started it)."""
        called = time.time()
        v = c.json("POST", "model-versions/create", body={"name": name, **source})["model_version"]
        answered = time.time()
        until_ready(name, v["version"])
        started, finished, where = ours_admin(env, "jobrun", name, v["version"]).split()
        return (float(finished) - called, float(finished) - float(started), v["version"], Path(where),
                answered - called, float(started) - answered)

    def remove(name, number, where):
        """Untimed, after a copy job: the copy is deleted and its files awaited gone, as `cp`'s are
        removed after each `cp` (on this kind of VM, a disk that keeps receiving new gigabytes
        slows down to ~400 MB/s for seconds)."""
        c.json("DELETE", "model-versions/delete", body={"name": name, "version": str(number)})
        deadline = time.monotonic() + 120
        while where.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the files of {name} v{number} were not removed")
            time.sleep(0.01)

    def cp():
        dest = tmp / "cp-target"
        t0 = time.perf_counter()
        subprocess.run(["cp", "-r", str(directory), str(dest)], check=True)
        elapsed = time.perf_counter() - t0
        shutil.rmtree(dest)  # before the next `settle`, whose sync then waits for the deletion
        return elapsed

    settle("warm", directory)
    # `cp` copies the very files the copy jobs read: the registered version's, not the logged
    # model's (same bytes, but other blocks on the disk, written another way).
    register_s, register_ran, version, directory, _, _ = job(
        f"{CATALOG}.big", {"source": big["source"], "model_id": big["model_id"]})
    total = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())
    mb = total / 1e6
    print(f"\nCopy throughput, a {mb / 1000:.2f} GB version (wall time from the API call until the worker made it "
          f"READY; each job reads each file once, hashing it as it is copied; sync before each copy)")
    print(f"  {'register job (warm)':24} {register_s:6.2f} s {'':12} {mb / register_s:7.0f} MB/s   "
          f"(the worker ran it in {register_ran:.2f} s)")
    print(f"  (each line: the median of {COPY_ROUNDS} rounds, min–max in brackets; the job and `cp` take turns "
          f"going first, so a slow spell of the disk falls on both alike)")
    for mode in ("warm", "cold source", "cold machine"):
        if not settle(mode, directory):
            print(f"  {mode}: not measured (dropping the page cache needs root)")
            break
        times, ran, starts = {"job": [], "cp": []}, [], []  # starts: (create answered, worker started)
        for r in range(COPY_ROUNDS):
            for what in ("job", "cp") if r % 2 == 0 else ("cp", "job"):
                settle(mode, directory)
                if what == "cp":
                    times["cp"].append(cp())
                    continue
                elapsed, seconds, number, where, api_s, wait_s = job(f"{CATALOG}.big_copy",
                                                                      {"source": f"models:/{CATALOG}.big/{version}"})
                times["job"].append(elapsed)
                ran.append(seconds)
                starts.append((api_s, wait_s))
                remove(f"{CATALOG}.big_copy", number, where)
        cp_s, copy_s = statistics.median(times["cp"]), statistics.median(times["job"])
        spread = {k: f"({min(v):.2f}–{max(v):.2f})" for k, v in times.items()}
        print(f"  {'cp -r (' + mode + ')':24} {cp_s:6.2f} s {spread['cp']:12} {mb / cp_s:7.0f} MB/s")
        print(f"  {'copy job (' + mode + ')':24} {copy_s:6.2f} s {spread['job']:12} {mb / copy_s:7.0f} MB/s   "
              f"{cp_s / copy_s:.2f}× cp   target ≥ 0.8×: {'MET' if cp_s / copy_s >= 0.8 else 'MISS'}   "
              f"(the worker ran it in {statistics.median(ran):.2f} s; the create answered in "
              f"{1000 * statistics.median(a for a, _ in starts):.0f} ms, the worker started it "
              f"{1000 * statistics.median(w for _, w in starts):.0f} ms after)")
    # What bounds a job that checks every byte: its hash on one core, of bytes already in memory.
    # A register job's sha256 runs on one core: the job takes at least that long. A copy job's
    # BLAKE3 may use both cores (`storage._hashers`), but the kernel copy beside it (`cp`'s own
    # work) needs one of them: at least (BLAKE3 + cp) / 2, and never less than cp.
    chunk = os.urandom(8 << 20)
    rounds = max(1, total // len(chunk))
    for name, digest, job_kind in (("sha256", hashlib.sha256(), "register"), ("BLAKE3", blake3.blake3(), "copy")):
        t0 = time.perf_counter()
        for _ in range(rounds):
            digest.update(chunk)
        hash_s = (time.perf_counter() - t0) * total / (rounds * len(chunk))
        bound = hash_s if job_kind == "register" else max(cp_s, (hash_s + cp_s) / 2)
        print(f"  {name + ' alone (memory)':24} {hash_s:6.2f} s {'':12} {mb / hash_s:7.0f} MB/s   (a {job_kind} job "
              f"takes at least {bound:.2f} s: at most {cp_s / bound:.2f}× the last cp above)")


if __name__ == "__main__":
    main()
