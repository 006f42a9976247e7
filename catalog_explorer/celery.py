import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "catalog_explorer.settings")

app = Celery("catalog_explorer")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def close_old_connections(sender=None, **kwargs):
    """Around every task, what Django does around every request: a database connection is
    closed when it outlived CONN_MAX_AGE, broke, or was left inside a transaction, and kept
    otherwise. Celery's own Django fixup closes every connection before and after every task
    unless CELERY_DB_REUSE_MAX is set (settings.py sets it), so each job paid a new PostgreSQL
    connection and a backend with cold caches: 7 ms of a small registration's 14. An eager task
    runs inside its caller's transaction and is left alone, as the fixup leaves it."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections as close

    close()
