"""Server-side time and query count of our HTML pages (issue 5).

    make bench-pages

Runs Django in this process against a PostgreSQL database of its own (`catalog_bench_pages`,
created and dropped), so the time is the server's alone: URL routing, middleware, permission
filtering, queries and template rendering, no network and no client. The data: a catalog with
1,000 models (owned by `admin`), one model `big` with 1,000 versions (tags and aliases on some),
and a user `few` who sees 1 % of the models (10 EXECUTE grants, USE CATALOG / USE SCHEMA).
Prints p50/p95 ms (the timed requests go round all pages in turn) and queries per page;
targets: the model page with 1,000 versions ≤ 50 ms, queries constant in rows, and `few`'s
permission-filtered lists no slower than the superuser's.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--database", default="catalog_bench_pages")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    args, _ = parser.parse_known_args()

    from bench_api import drop_database, new_database  # benchmarks/, this script's directory

    new_database(args, args.database)
    tmp = Path(tempfile.mkdtemp(prefix="catalog-bench-pages-"))
    (tmp / "staticfiles").mkdir()
    os.environ.update({
        "DATABASE_URL": f"{args.pg}/{args.database}", "VAR_DIR": str(tmp), "DEBUG": "false",
        "SECRET_KEY": "benchmark-only-" + os.urandom(8).hex(), "LOG_LEVEL": "ERROR",
        "DJANGO_SETTINGS_MODULE": "catalog_explorer.settings", "REDIS_URL": "redis://127.0.0.1:6379/5",
    })
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        call_command("collectstatic", verbosity=0, interactive=False)
        run(args)
    finally:
        from django.db import connections

        connections.close_all()
        shutil.rmtree(tmp, ignore_errors=True)
        drop_database(args, args.database)


def seed(n_models, n_versions):
    from django.contrib.auth import get_user_model
    from django.db import connection

    from registry import services
    from registry.models import Alias, Catalog, ModelTag, ModelVersion, RegisteredModel, Schema, VersionTag

    User = get_user_model()
    admin = User.objects.create_superuser("admin", "admin@example.com", "x")
    few = User.objects.create_user("few", "few@example.com", "x")
    catalog = Catalog.objects.create(name="bench", owner_user=admin, created_by=admin)
    schema = Schema.objects.create(catalog=catalog, name="ml", owner_user=admin, created_by=admin)
    models = RegisteredModel.objects.bulk_create([
        RegisteredModel(schema=schema, name=f"m_{i:05d}", full_name=f"bench.ml.m_{i:05d}", owner_user=admin,
                        created_by=admin, last_version=1, description=f"Model **{i}**")
        for i in range(n_models - 1)
    ])
    ModelTag.objects.bulk_create([ModelTag(model=m, key="tier", value="gold" if i % 10 == 0 else "bronze")
                                  for i, m in enumerate(models)])
    ModelVersion.objects.bulk_create([ModelVersion(model=m, version=1, status=ModelVersion.READY, created_by=admin)
                                      for m in models])
    big = RegisteredModel.objects.create(schema=schema, name="big", full_name="bench.ml.big", owner_user=admin,
                                         created_by=admin, last_version=n_versions)
    versions = ModelVersion.objects.bulk_create([
        ModelVersion(model=big, version=v, status=ModelVersion.READY, created_by=admin, run_id=f"run{v}",
                     source=f"models:/m-{v}", description=f"version {v}")
        for v in range(1, n_versions + 1)
    ])
    VersionTag.objects.bulk_create([VersionTag(version=v, key="stage", value=str(v.version % 3)) for v in versions])
    Alias.objects.bulk_create([Alias(model=big, version=versions[-1 - i], name=f"alias{i}") for i in range(5)])
    services.grants_change(actor=admin, obj=catalog, changes=[{"principal": "few", "add": ["USE CATALOG"]}])
    services.grants_change(actor=admin, obj=schema, changes=[{"principal": "few", "add": ["USE SCHEMA"]}])
    for m in models[:: max(1, n_models // 10)][:9] + [big]:
        services.grants_change(actor=admin, obj=m, changes=[{"principal": "few", "add": ["EXECUTE"]}])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return admin, few


def count_queries(client, url):
    """Warm the page up, then count the queries of one request."""
    from django.db import connection

    for _ in range(3):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    executed = []

    def count(execute, sql, params, many, context):
        executed.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):  # the request resets connection.queries: count here
        client.get(url)
    return len(executed)


def measure(clients, pages, n):
    """{(user, page name): (p50 ms, p95 ms, queries)}. The timed requests go round the pages
    (one request of each page, n times), so a noisy moment of this shared VM falls on every
    page alike; the comparisons between the 1 % user and the superuser take their pages from
    the same minutes. (Timed page by page, a burst once made one of the two 45 % slower.)"""
    queries = {(user, name): count_queries(clients[user], url) for user, name, url in pages}
    times = {(user, name): [] for user, name, _ in pages}
    for _ in range(n):
        for user, name, url in pages:
            t0 = time.perf_counter()
            clients[user].get(url)
            times[(user, name)].append((time.perf_counter() - t0) * 1000)
    out = {}
    for key, values in times.items():
        values.sort()
        out[key] = (statistics.median(values), values[int(0.95 * (len(values) - 1))], queries[key])
    return out


def run(args):
    from django.test import Client

    t0 = time.perf_counter()
    admin, few = seed(args.models, args.versions)
    print(f"# bench_pages · {os.cpu_count()} CPUs · {args.models} models, one with {args.versions} versions "
          f"(seeded in {time.perf_counter() - t0:.0f} s) · {args.requests} timed requests per page")
    clients = {}
    for user in (admin, few):
        c = Client(HTTP_HOST="127.0.0.1")
        c.force_login(user)
        clients[user.username] = c
    pages = [
        ("admin", "home: catalog tree", "/"),
        ("admin", "catalog page", "/explore/bench/"),
        ("admin", "schema page: model list", "/explore/bench/ml/"),
        ("few", "schema page: model list", "/explore/bench/ml/"),
        ("admin", "model page, 1 version", "/explore/bench/ml/m_00000/"),
        ("admin", "model page, 1,000 versions (page 1)", "/explore/bench/ml/big/"),
        ("admin", "model page, 1,000 versions (page 20)", "/explore/bench/ml/big/?page=20"),
        ("few", "model page, 1,000 versions (page 1)", "/explore/bench/ml/big/"),
        ("admin", "version page", "/explore/bench/ml/big/versions/500/"),
        ("admin", "search 'm_000'", "/search/?q=m_000"),
        ("few", "search 'm_000'", "/search/?q=m_000"),
        ("admin", "search tag tier=gold", "/search/?tag=tier%3Dgold"),
        ("few", "search tag tier=gold", "/search/?tag=tier%3Dgold"),
    ]
    print(f"\n{'page':42} {'user':6} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8}")
    results = measure(clients, pages, args.requests)
    for user, name, _ in pages:
        p50, p95, queries = results[(user, name)]
        print(f"{name:42} {user:6} {p50:8.1f} {p95:8.1f} {queries:8d}")
    print("\nTargets")
    p50 = results[("admin", "model page, 1,000 versions (page 1)")][0]
    print(f"  {'MET ' if p50 <= 50 else 'MISS'} model page with 1,000 versions: {p50:.1f} ms (≤ 50)")
    q1, q1000 = results[("admin", "model page, 1 version")][2], results[("admin", "model page, 1,000 versions (page 1)")][2]
    print(f"  {'MET ' if q1 == q1000 else 'MISS'} model page queries constant in rows: {q1} with 1 version, "
          f"{q1000} with 1,000")
    for name in ("schema page: model list", "search 'm_000'", "search tag tier=gold",
                 "model page, 1,000 versions (page 1)"):
        a, f = results[("admin", name)][0], results[("few", name)][0]
        print(f"  {'MET ' if f <= a * 1.1 else 'MISS'} {name}: 1 % user {f:.1f} ms vs superuser {a:.1f} ms "
              f"(no slower; 10 % noise allowed)")


if __name__ == "__main__":
    main()
