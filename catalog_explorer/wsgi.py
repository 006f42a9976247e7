import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "catalog_explorer.settings")
# Repeated MLflow reads whose answer still holds are answered before Django's request handling
# (registry/api/read_cache.py); everything else goes to Django.
application = get_wsgi_application()

from registry.api.read_cache import ReadCacheWSGI  # noqa: E402 (needs the settings loaded)

application = ReadCacheWSGI(application)

# Load the URL conf, and with it every view, now rather than on each worker's first request.
get_resolver().url_patterns
# What is loaded by now lives as long as the process: keep it out of the cyclic garbage
# collector's way, which otherwise walks all of it at every full collection. A 100-model
# search page costs ~20-30 % less CPU (benchmarks/RESULTS.md, round 5).
gc.freeze()
