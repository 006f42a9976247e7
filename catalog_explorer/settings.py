"""Settings, all from environment variables (documented in README.md).

A bad value fails at start with ImproperlyConfigured, never later.
"""

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def envbool(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {value!r}")


def envint(name, default, minimum=None):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or (minimum is not None and number < minimum):
        at_least = "" if minimum is None else f", {minimum} or more"
        raise ImproperlyConfigured(f"{name} must be an integer{at_least}, got {value!r}")
    return number


def envlist(name, default):
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def _secret_key():
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    # No fixed default secret: generate one per installation and keep it in var/.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        from django.core.management.utils import get_random_secret_key

        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(get_random_secret_key())
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = envbool("DEBUG", False)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "guardian",
    "django_htmx",
    "csp",
    "registry",
]

MIDDLEWARE = [
    "registry.api.read_cache.ReadCacheMiddleware",  # a repeated MLflow read, answered before the rest
    "registry.middleware.ApiMiddleware",  # /api/ takes API_MIDDLEWARE instead of what follows
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "registry.middleware.AuditContextMiddleware",
    "registry.middleware.ReusedPlansMiddleware",
]
# What requests under /api/ go through (registry.middleware.ApiMiddleware).
API_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "registry.middleware.ApiCommonMiddleware",  # the host against ALLOWED_HOSTS (DNS rebinding)
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "registry.middleware.AuditContextMiddleware",
    "registry.middleware.ReusedPlansMiddleware",
]

ROOT_URLCONF = "catalog_explorer.urls"
WSGI_APPLICATION = "catalog_explorer.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: SQLite by default, DATABASE_URL=postgres://… for PostgreSQL ----------------
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
if not DATABASE_URL.split(":", 1)[0] in ("sqlite", "postgres", "postgresql", "pgsql"):
    raise ImproperlyConfigured("DATABASE_URL must be sqlite:///path or postgres://…")
VAR_DIR.mkdir(parents=True, exist_ok=True)
# A PostgreSQL connection is kept 10 minutes (DB_CONN_MAX_AGE). What it has prepared and cached
# goes with it: on a new connection a read's first run costs 5.7-8.4 ms instead of 0.6-0.9 ms
# (statements planned again, the backend's catalog caches filled again), a copy's create 25-34 ms
# instead of 11-13; each web thread and worker process has its own connection, so with 60 s
# (the default before) a quiet server paid that again every minute (benchmarks/RESULTS.md, round 31).
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=envint("DB_CONN_MAX_AGE", 600))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",  # writers queue instead of failing with "database is locked"
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    # PostgreSQL session settings, sent with the connection's start (`options`): no round trip of their own.
    _pg_settings = []
    # The planner's price of a random page read against a sequential one: 4 by default, which
    # models spinning disks; PostgreSQL's manual suggests about 1.1 for data on SSDs or in cache.
    # At 4 it scanned the whole tag and alias tables once per model of a search page rather
    # than probe their (model) indexes while they were small (a few hundred rows): the first
    # page's statement 2.9 -> 1.9 ms for 50 models, 4.5 -> 3.3 ms for 100 at 100,000 versions
    # (benchmarks/RESULTS.md, round 13). Empty: the server's own setting.
    if _cost := os.environ.get("DB_RANDOM_PAGE_COST", "1.1").strip():
        try:
            _value = float(_cost)
        except ValueError:
            _value = -1.0
        if not 0 <= _value < float("inf"):  # PostgreSQL refuses the rest, at every connection
            raise ImproperlyConfigured(f"DB_RANDOM_PAGE_COST must be a number, 0 or more, not {_cost!r}")
        _pg_settings.append(f"random_page_cost={_value}")
    if envbool("DB_PREPARED_STATEMENTS", True):
        # The permission queries (registry/permissions.py) run as prepared statements,
        # planned once per connection instead of ~10 ms on every request. Only those: Django's
        # own queries keep client-side binding. Set DB_PREPARED_STATEMENTS=false behind a
        # pooler in transaction mode that does not track prepared statements (PgBouncer
        # before 1.21). A prepared statement runs its generic plan: PostgreSQL otherwise keeps
        # planning a custom plan on every run when it guesses the generic one dearer, which it
        # did for the permission-filtered searches (2.2 ms of planning on a 2.2 ms run,
        # benchmarks/RESULTS.md). It affects only prepared statements; their SQL is built so
        # that one plan fits every run (limits in the SQL, values as parameters).
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
        _pg_settings.append("plan_cache_mode=force_generic_plan")
    if _pg_settings:  # before any `options` DATABASE_URL gives (`?options=…`), which so win
        _options = DATABASES["default"].setdefault("OPTIONS", {})
        _options["options"] = " ".join([f"-c {s}" for s in _pg_settings] + [_options.get("options", "")]).strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth ---------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous pseudo-user; anonymous sees nothing
GUARDIAN_RAISE_403 = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# --- Security headers ---------------------------------------------------------------------
X_FRAME_OPTIONS = "DENY"
CSRF_FAILURE_VIEW = "registry.views.errors.csrf_failure"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("MAX_REQUEST_BYTES", 5 * 1024 * 1024)

# --- i18n / static ------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- REST API -----------------------------------------------------------------------------
# Repeated MLflow reads answered from memory while PostgreSQL's snapshot is unchanged
# (registry/api/read_cache.py): per web process, at most this many requests and megabytes of
# answers; 0 turns it off.
API_READ_CACHE_ENTRIES = envint("API_READ_CACHE_ENTRIES", 4096)
API_READ_CACHE_MB = envint("API_READ_CACHE_MB", 32)
REST_FRAMEWORK = {
    # No session-cookie auth on /api/: HTTP basic (MLFLOW_TRACKING_USERNAME/PASSWORD) or
    # Authorization: Bearer <token> (MLFLOW_TRACKING_TOKEN).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "registry.api.auth.BearerTokenAuthentication",
        "registry.api.auth.GuardedBasicAuthentication",  # locks out repeated wrong passwords
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["registry.api.parsers.StrictJSONParser"],  # size limit, no duplicate keys
    "DEFAULT_RENDERER_CLASSES": ["registry.api.renderers.SafeJSONRenderer"],  # escapes < > &
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # {"error_code", "message"} for every API error, in the view's style (UC or MLflow codes).
    "EXCEPTION_HANDLER": "registry.api.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Catalog Explorer API",
    "DESCRIPTION": "Unity Catalog-style catalogs, schemas and grants; MLflow-compatible registry.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- Celery: REDIS_URL when one answers, otherwise an embedded filesystem broker -----------
def _redis_answers(url):
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=0.3):
            return True
    except OSError:
        return False


REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or (
    REDIS_URL if (os.environ.get("REDIS_URL") or _redis_answers(REDIS_URL)) else "filesystem://"
)
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = VAR_DIR / "broker"
    for sub in ("queue", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # else kombu writes ./control in the cwd
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": envint("JOB_VISIBILITY_TIMEOUT", 6 * 3600)}
# The queue jobs are published to and workers consume: one per installation by default; a queue
# of its own lets two installations (or a test server) share one Redis without taking each
# other's jobs.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("JOB_QUEUE") or "celery"
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Jobs one worker runs at once (prefork children). A small registration waits on its two
# commits, Redis and the disk about as long as it computes, so twice the cores keeps them busy
# while others wait: with 4 children on 2 cores, 200 registrations' last versions were READY
# 0.03-0.48 s after the last create, against 0.43-1.03 s with 2 (the total moved between +15 %
# and none from run to run: the cores are the bound; benchmarks/RESULTS.md, round 16).
CELERY_WORKER_CONCURRENCY = envint("JOB_CONCURRENCY", 2 * (os.cpu_count() or 1), minimum=1)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes every database connection before and after every task unless this
# is set; with it, it closes them only every this many tasks, and catalog_explorer/celery.py
# closes one as Django does after a request (older than CONN_MAX_AGE, broken, left in a
# transaction). A new connection per task was half of a small registration's cost (7 of 14 ms).
CELERY_DB_REUSE_MAX = 1000

# --- Registry limits (documented in README) -----------------------------------------------
REGISTRY = {
    "MAX_ALIASES_PER_MODEL": 10,
    "MAX_TAGS_PER_OBJECT": 50,
    "MAX_TAG_KEY_LENGTH": 250,
    "MAX_TAG_VALUE_LENGTH": 5000,
    "MAX_DESCRIPTION_LENGTH": 100_000,
    "VERSIONS_PAGE_SIZE": 50,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# --- Artifacts and background jobs (issue 3; documented in README) ------------------------
# Every version's files live in storage the server chooses, through Django's storage API:
# a directory (ARTIFACT_ROOT) by default, or an S3-compatible bucket with ARTIFACT_STORAGE=s3.
ARTIFACT_ROOT = Path(os.environ.get("ARTIFACT_ROOT") or VAR_DIR / "artifacts")
ARTIFACT_STORAGE = os.environ.get("ARTIFACT_STORAGE", "filesystem")
if ARTIFACT_STORAGE == "filesystem":
    STORAGES["artifacts"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        # Paths are chosen by the server and rewritten whole by a retried job: overwrite, never rename.
        "OPTIONS": {"location": str(ARTIFACT_ROOT), "base_url": "/unused/", "allow_overwrite": True},
    }
elif ARTIFACT_STORAGE == "s3":
    from boto3.s3.transfer import TransferConfig

    if not os.environ.get("ARTIFACT_S3_BUCKET"):
        raise ImproperlyConfigured("ARTIFACT_STORAGE=s3 needs ARTIFACT_S3_BUCKET")
    STORAGES["artifacts"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ["ARTIFACT_S3_BUCKET"],
            "location": os.environ.get("ARTIFACT_S3_PREFIX", ""),
            "endpoint_url": os.environ.get("ARTIFACT_S3_ENDPOINT_URL") or None,  # MinIO, Ceph…
            "region_name": os.environ.get("ARTIFACT_S3_REGION") or None,
            "access_key": os.environ.get("ARTIFACT_S3_ACCESS_KEY") or None,  # else boto3's usual chain
            "secret_key": os.environ.get("ARTIFACT_S3_SECRET_KEY") or None,
            "file_overwrite": True,
            "default_acl": None,
            "querystring_auth": True,
            # Read each file in the job's own thread: progress and heartbeat stay with the job.
            "transfer_config": TransferConfig(use_threads=False),
        },
    }
else:
    raise ImproperlyConfigured(f"ARTIFACT_STORAGE must be 'filesystem' or 's3', got {ARTIFACT_STORAGE!r}")

JOBS = {
    "MAX_ATTEMPTS": envint("JOB_MAX_ATTEMPTS", 3),  # runs of one job before it fails for good
    "STALE_AFTER": envint("JOB_STALE_SECONDS", 60),  # a running job without heartbeat this long is lost
    "REQUEUE_QUEUED_AFTER": envint("JOB_REQUEUE_SECONDS", 300),  # queued, never picked up: publish again
    "PROGRESS_INTERVAL": 0.4,  # seconds between progress writes of one job (heartbeat included)
    "TIME_LIMIT": envint("JOB_TIME_LIMIT", 4 * 3600),  # the longest job; the worker stops it after
    "COPY_MAX_BYTES_PER_SECOND": envint("ARTIFACT_COPY_MAX_BYTES_PER_SECOND", 0),  # 0: no limit
    "BROKER_CHECK_TIMEOUT": 2.0,  # seconds; an action needing a job fails fast when the broker is down
}
CELERY_TASK_SOFT_TIME_LIMIT = JOBS["TIME_LIMIT"]
CELERY_TASK_TIME_LIMIT = JOBS["TIME_LIMIT"] + 60
if CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", float("inf")) <= CELERY_TASK_TIME_LIMIT:
    # acks_late + Redis: a message not acked within the visibility timeout is delivered again.
    raise ImproperlyConfigured("JOB_VISIBILITY_TIMEOUT must be longer than JOB_TIME_LIMIT + 60 s")
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS["socket_connect_timeout"] = JOBS["BROKER_CHECK_TIMEOUT"]
CELERY_BEAT_SCHEDULE = {
    "sweep-stale-jobs": {"task": "registry.sweep_stale_jobs", "schedule": envint("JOB_SWEEP_SECONDS", 30)},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory: the integration tests' Celery worker process opens the same test
    # database. One per test process, so two test runs in one checkout never share it.
    import tempfile

    DATABASES["default"].setdefault("TEST", {}).setdefault(
        "NAME", str(Path(tempfile.gettempdir()) / f"catalog_explorer_test_{os.getpid()}.sqlite3")
    )

# --- MLflow artifact proxy (issue 4) ------------------------------------------------------
# The largest single file a client may upload through /api/2.0/mlflow-artifacts/ (bytes).
MLFLOW_ARTIFACT_MAX_BYTES = envint("MLFLOW_ARTIFACT_MAX_BYTES", 5 * 1024**3)
