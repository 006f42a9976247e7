"""Our server as `bench_api.py` runs it: the product's settings with one more route, the no-op
floor (`bench_urls`). Never used outside the benchmark."""

from catalog_explorer.settings import *  # noqa: F401,F403

ROOT_URLCONF = "benchmarks.bench_urls"
