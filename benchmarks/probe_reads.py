"""Where a read computed afresh spends its time beyond the no-op floor, in-process (issue 5: a
registry read ≤ 1.5× the floor; benchmarks/RESULTS.md).

    make bench BENCH_ARGS="--copy-mb 0 --keep -n 40"   # leaves catalog_bench (100,000 versions)
                                                       # and catalog_bench_small (200)
    .venv/bin/python benchmarks/probe_reads.py --database catalog_bench_small [--statements]

Our WSGI application runs in this process (no server, no socket), on a database that
`bench_api.py --keep` left, as its user `bench`, with the product's settings and the floor's
route (`bench_settings`). Each request says `Cache-Control: no-cache`, so every read is computed
afresh (its token checked in its own statement: one statement, as the floor's). The reads and
the floor alternate request by request; for each, the p50 of the whole request, of its
statements (the driver's execute, as Django's `execute_wrapper` sees it) and of the rest (our
Python and Django's), and each of those minus the floor's.

`--statements`: then each request's statement as captured, run again on its own through the
same kind of connection (psycopg, prepared, the settings' generic plan) alternating with the
floor's statement and `SELECT 1`: the statement's own time, without Python.

The code measured is this file's tree (it goes first on `sys.path`, and is printed): to compare
two trees, run each one's copy of this script, one after the other or alternately.
"""

import argparse
import atexit
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_api import CATALOG, FLOOR_OP, PREFIX, operations  # noqa: E402

FLOOR = "floor"


def requests(n_models, n_versions, index):
    """name → (path, query) of the reads `bench_api.py` measures, as its request `index` asks
    them (the model it names: `bench_api.operations`), and the floor."""
    reads = {FLOOR: FLOOR_OP, **{name: op for name, op in operations(n_models, n_versions).items() if op[3]}}
    return {name: (PREFIX + path, make(index)) for name, (_, path, make, _) in reads.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="catalog_bench_small")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--user", default="bench", help="whose token the requests carry")
    parser.add_argument("--models", type=int, default=50, help="the workload's models (`bench_api.py --models`)")
    parser.add_argument("--versions", type=int, default=4, help="and versions of each (`--versions`)")
    parser.add_argument("--index", type=int, default=1, help="which of its requests (1: the 8th model's)")
    parser.add_argument("-n", "--rounds", type=int, default=2000, help="timed rounds (every request once each)")
    parser.add_argument("--statements", action="store_true", help="also time each request's statement alone")
    args = parser.parse_args()

    os.environ.update(DJANGO_SETTINGS_MODULE="benchmarks.bench_settings", DATABASE_URL=f"{args.pg}/{args.database}",
                      DEBUG="false", LOG_LEVEL="WARNING")
    os.environ.setdefault("SECRET_KEY", "probe-only-" + os.urandom(16).hex())
    if "VAR_DIR" not in os.environ:  # nothing is written there; removed at exit
        os.environ["VAR_DIR"] = tempfile.mkdtemp(prefix="catalog-probe-")
        atexit.register(shutil.rmtree, os.environ["VAR_DIR"], ignore_errors=True)
    (Path(os.environ["VAR_DIR"]) / "staticfiles").mkdir(parents=True, exist_ok=True)

    import django

    django.setup()
    from django.core.wsgi import get_wsgi_application
    from django.db import connection
    from rest_framework.authtoken.models import Token

    import registry
    from registry.api.read_cache import ReadCacheWSGI
    from tests.wsgi_support import call

    token = Token.objects.filter(user__username=args.user).values_list("key", flat=True).first()
    if token is None:
        sys.exit(f"No API token of {args.user!r} in {args.database}: a database `bench_api.py --keep` left?")
    app = ReadCacheWSGI(get_wsgi_application())
    headers = {"HTTP_HOST": "127.0.0.1", "HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_CACHE_CONTROL": "no-cache"}
    reads = requests(args.models, args.versions, args.index)
    captured = []

    def note(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            captured.append((sql, params, time.perf_counter() - started))

    def once(name):
        path, query = reads[name]
        captured.clear()
        with connection.execute_wrapper(note):
            started = time.perf_counter()
            status, _, body = call(app, path, query, **headers)
            b"".join(body)
            took = time.perf_counter() - started
        if not status.startswith("200"):
            sys.exit(f"{name}: {status}")
        return took, sum(t for _, _, t in captured), list(captured)

    print(f"# probe_reads {args.database} as {args.user} ({CATALOG}), code of {Path(registry.__file__).parent.parent}")
    for _ in range(50):  # the statements prepared, their generic plans made, the caches filled
        for name in reads:
            once(name)
    times = {name: ([], []) for name in reads}
    for _ in range(args.rounds):
        for name in reads:
            took, in_sql, _ = once(name)
            times[name][0].append(took)
            times[name][1].append(in_sql)
    p50 = {name: (statistics.median(total), statistics.median(in_sql),
                  statistics.median(t - s for t, s in zip(total, in_sql))) for name, (total, in_sql) in times.items()}
    print(f"\n{'p50 ms, in-process, afresh':34} {'request':>8} {'stmts':>6} {'rest':>6}   minus the floor's: "
          f"{'request':>7} {'stmts':>6} {'rest':>6}   × floor")
    floor = p50[FLOOR]
    for name, (total, in_sql, rest) in p50.items():
        print(f"{name:34} {total * 1e3:8.3f} {in_sql * 1e3:6.3f} {rest * 1e3:6.3f}   {'':18}"
              f"{(total - floor[0]) * 1e3:7.3f} {(in_sql - floor[1]) * 1e3:6.3f} {(rest - floor[2]) * 1e3:6.3f}"
              f"   {total / floor[0]:5.2f}")
    if args.statements:
        statements(args.rounds, {name: once(name)[2] for name in reads}, connection)


def statements(rounds, captured, connection):
    """Each request's statement(s) run again alone, alternating, on Django's own connection
    (the settings' prepared statements and plan mode), beside `SELECT 1`."""
    from registry.db import reused_plans

    runs = {name: [(sql, params) for sql, params, _ in found] for name, found in captured.items()}
    runs["SELECT 1"] = [("SELECT 1", ())]

    def run(name):
        started = time.perf_counter()
        with reused_plans(), connection.cursor() as cursor:
            for sql, params in runs[name]:
                cursor.execute(sql, params)
                cursor.fetchall()
        return time.perf_counter() - started

    for _ in range(50):
        for name in runs:
            run(name)
    lat = {name: [] for name in runs}
    for _ in range(rounds):
        for name in runs:
            lat[name].append(run(name))
    print(f"\n{'the statements alone, p50 ms':34} {'':8} {'stmts':>6}   minus the floor's")
    floor = statistics.median(lat[FLOOR])
    for name, values in lat.items():
        print(f"{name:34} {'':8} {statistics.median(values) * 1e3:6.3f}   {(statistics.median(values) - floor) * 1e3:6.3f}"
              f"   ({len(runs[name])} statement{'s' if len(runs[name]) != 1 else ''})")


if __name__ == "__main__":
    main()
