"""Settings for Agent Observatory: one file, configured by environment variables only."""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
import plotly
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise ImproperlyConfigured(f"{name} must be one of true/false/1/0, got {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from exc


def env_secret(name: str, default: str = "") -> str:
    """Read NAME, or the file named by NAME_FILE (Docker secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name, default)


DEBUG = env_bool("DEBUG", False)
DATA_DIR = Path(env_str("OBSERVATORY_DATA_DIR", str(BASE_DIR / "data"))).resolve()

SECRET_KEY = env_secret("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is false")
    SECRET_KEY = "insecure-development-key-only-for-debug"

# Not "*": absolute links (SITE_URL aside) are built from the Host header, so any host would do.
ALLOWED_HOSTS = [
    h.strip() for h in env_str("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()
]
# Behind a TLS-terminating proxy: secure cookies, HSTS and the proxy's X-Forwarded-Proto trusted.
OBSERVATORY_HTTPS = env_bool("OBSERVATORY_HTTPS", False)
if OBSERVATORY_HTTPS:
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("OBSERVATORY_HTTPS_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("OBSERVATORY_HSTS_SECONDS", 31_536_000)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = [o for o in env_str("CSRF_TRUSTED_ORIGINS").split(",") if o]
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "template_partials",
    "axes",
    "ingest",
    "analytics",
    "api",
    "dashboard",
    # Only management commands (the seeders); they import the SDK when run, not at startup.
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.gzip.GZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "ingest.middleware.DatabaseUnavailableMiddleware",
    # Last, as django-axes asks: it answers a locked-out login attempt.
    "axes.middleware.AxesMiddleware",
]

# Password guessing: after AXES_FAILURE_LIMIT failed logins for one user name from one address,
# that pair is locked out for OBSERVATORY_LOGIN_LOCKOUT_MINUTES (a 429); a success resets it.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("OBSERVATORY_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = env_int("OBSERVATORY_LOGIN_LOCKOUT_MINUTES", 15) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False
# Stateless web (docs/deployment.md): logins and lockouts live in the database, so every web
# process behind a load balancer sees the same ones (the defaults, stated so they stay).
SESSION_ENGINE = "django.contrib.sessions.backends.db"
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL plus IMMEDIATE transactions: the web server and the Celery worker write at the same
    # time, and this pair gave zero "database is locked" errors under 4 concurrent writers.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0

# Optional read replica of the primary (a PostgreSQL streaming replica): dashboard pages and the
# read API read telemetry from it (config/replica.py says which reads stay on the primary). In
# tests it is a TEST MIRROR of the primary, so the suite runs every page through the router.
DATABASE_REPLICA_URL = env_str("DATABASE_REPLICA_URL")
# After a write through a page or the API, that client reads the primary for this long, so it
# sees its own change although the replica is a moment behind.
OBSERVATORY_REPLICA_PIN_SECONDS = env_int("OBSERVATORY_REPLICA_PIN_SECONDS", 10)
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = dj_database_url.parse(DATABASE_REPLICA_URL, conn_max_age=60)
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
    DATABASE_ROUTERS = ["config.replica.ReplicaRouter"]
    MIDDLEWARE.append("config.replica.ReplicaMiddleware")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:overview"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    # plotly.js comes from the pinned plotly wheel, so the JS and Python versions cannot drift.
    ("plotly", Path(plotly.__file__).parent / "package_data"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Ingest limits; each is named in the error a client gets when it is exceeded.
OBSERVATORY_MAX_BATCH_BYTES = env_int("OBSERVATORY_MAX_BATCH_BYTES", 10 * 1024 * 1024)
OBSERVATORY_MAX_BATCH_RECORDS = env_int("OBSERVATORY_MAX_BATCH_RECORDS", 5000)
OBSERVATORY_MAX_STRING_CHARS = env_int("OBSERVATORY_MAX_STRING_CHARS", 1_000_000)
DATA_UPLOAD_MAX_MEMORY_SIZE = OBSERVATORY_MAX_BATCH_BYTES + 1024 * 1024
# Deferred landing (ingest/landing.py): an OTLP request of fewer records than this (for protobuf
# traces: spans) is answered once its body is committed as a pending request, and landed after
# the answer together with the other pending requests of its project, at most this many per
# landing; 0 stores every request inline. Beat lands what is left over (a landing lost with its
# process) on its period.
OBSERVATORY_DEFER_BELOW_RECORDS = env_int("OBSERVATORY_DEFER_BELOW_RECORDS", 64)
OBSERVATORY_LANDING_BATCH_REQUESTS = env_int("OBSERVATORY_LANDING_BATCH_REQUESTS", 200)
OBSERVATORY_LANDING_SWEEP_SECONDS = env_int("OBSERVATORY_LANDING_SWEEP_SECONDS", 5)
# Each process keeps an API key it has read (its project and scopes with it) this long: a
# revocation, a scope change or a project setting (redaction, session attributes) reaches every
# process within this time (docs/access.md); 0 reads the key on every request.
OBSERVATORY_API_KEY_CACHE_SECONDS = env_int("OBSERVATORY_API_KEY_CACHE_SECONDS", 1)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "api.authentication.KeyScopes",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.KeysetCursorPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "api.exceptions.error_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Agent Observatory API",
    "DESCRIPTION": "Read API over sessions, events, agents, transcripts and metrics.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The ingest endpoints are plain Django views: api/schema.py describes them.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.add_ingest_paths",
    ],
    # The schema and its docs pages for a logged-in member or a project key, not the internet.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "kind" or "status" field with their own choices: name each enum.
    "ENUM_NAME_OVERRIDES": {
        "SpanKindEnum": "ingest.models.Span.Kind",
        "SpanStatusEnum": "ingest.models.Span.Status",
        "AgentStatusEnum": "ingest.models.Agent.Status",
        "WorkflowStatusEnum": "ingest.models.Workflow.Status",
        "StepStatusEnum": "ingest.models.Step.Status",
        "AnomalyStatusEnum": "analytics.models.Anomaly.Status",
        "AlertRuleKindEnum": "analytics.models.AlertRule.Kind",
        "ErasureKindEnum": "ingest.models.ErasureRequest.Kind",
    },
}

# Celery. With no CELERY_BROKER_URL we use kombu's filesystem transport: a real worker runs
# tasks, and nothing needs a broker server. Its folders must be absolute and must exist.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
CELERY_QUEUE_DIR = DATA_DIR / "celery"
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's transport with atomic message files (config/broker.py says why).
    CELERY_BROKER_TRANSPORT = "config.broker:Transport"
    for sub in ("queue", "processed", "control"):
        (CELERY_QUEUE_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_QUEUE_DIR / "queue"),
        "data_folder_out": str(CELERY_QUEUE_DIR / "queue"),
        "processed_folder": str(CELERY_QUEUE_DIR / "processed"),
        "control_folder": str(CELERY_QUEUE_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.2,
    }
else:
    # Fail fast when Redis is down: ingest sends tasks inline and must not wait on the broker.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 5}
CELERY_BROKER_CONNECTION_TIMEOUT = 1
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Queues by kind (docs/deployment.md), so a slow analytics refresh never delays an alert: give
# each queue its own workers with `celery worker -Q <queue>`. A worker started without -Q
# consumes all four (the demo and the tests run one such worker).
CELERY_TASK_QUEUES: dict[str, dict[str, str]] = {
    name: {} for name in ("ingest", "analytics", "alerts", "reports")
}
CELERY_TASK_DEFAULT_QUEUE = "ingest"
CELERY_TASK_DEFAULT_EXCHANGE = "observatory"
CELERY_TASK_ROUTES = {
    # Ingest follow-ups: what makes a new batch visible (summaries, search index, detectors,
    # test analysis).
    "analytics.tasks.summarize_sessions_task": {"queue": "ingest"},
    "analytics.tasks.summarize_and_analyze_sessions_task": {"queue": "ingest"},
    "analytics.tasks.sweep_stale_summaries_task": {"queue": "ingest"},
    "analytics.tasks.analyze_sessions_task": {"queue": "ingest"},
    "analytics.tasks.refresh_test_analysis_task": {"queue": "ingest"},
    "analytics.tasks.sweep_test_analysis_task": {"queue": "ingest"},
    "analytics.tasks.ping": {"queue": "ingest"},
    # Stores the pending (deferred) small requests that a lost landing left behind.
    "ingest.tasks.land_pending_requests_task": {"queue": "ingest"},
    # Analytics refresh (rollups, clusters, anomalies, incidents, forecasts) and the bulk
    # deletes of retention and erasure: long, and nothing waits on them minute by minute.
    "analytics.tasks.refresh_project_analytics_task": {"queue": "analytics"},
    "analytics.tasks.sweep_pending_refreshes_task": {"queue": "analytics"},
    "ingest.tasks.enforce_retention_task": {"queue": "analytics"},
    "ingest.tasks.run_erasure_task": {"queue": "analytics"},
    # Alerts and webhooks: short, and late is wrong.
    "analytics.tasks.evaluate_alerts_task": {"queue": "alerts"},
    "ingest.tasks.send_requeue_webhook_task": {"queue": "alerts"},
    "analytics.tasks.make_reports_task": {"queue": "reports"},
}
# How often beat sweeps sessions whose summaries are stale (covers a broker that was down).
OBSERVATORY_SUMMARY_SWEEP_SECONDS = env_int("OBSERVATORY_SUMMARY_SWEEP_SECONDS", 30)
# The follow-up after a batch (summary, search entries, failure detectors) rereads the whole
# session, so a session whose spans come in many batches cost the square of its batches. On
# PostgreSQL a session of at least this many summarised spans is followed up again only once it
# has grown by this percentage; until then it stays stale and the sweep above takes it. So a
# long session costs a few times its spans, and its summary is at most a sweep period behind.
OBSERVATORY_SUMMARY_EVERY_BATCH_BELOW_SPANS = env_int(
    "OBSERVATORY_SUMMARY_EVERY_BATCH_BELOW_SPANS", 64
)
OBSERVATORY_SUMMARY_GROWTH_PERCENT = env_int("OBSERVATORY_SUMMARY_GROWTH_PERCENT", 25)
# Analytics (analytics/tasks.py): a project's rollups, clusters and anomalies are refreshed this
# long after the first batch that changes them (later batches in the delay ride along); beat
# catches up on lost refreshes, evaluates alert rules and makes reports on these periods.
OBSERVATORY_ANALYTICS_DEBOUNCE_SECONDS = env_int("OBSERVATORY_ANALYTICS_DEBOUNCE_SECONDS", 10)
OBSERVATORY_ANALYTICS_SWEEP_SECONDS = env_int("OBSERVATORY_ANALYTICS_SWEEP_SECONDS", 60)
OBSERVATORY_ALERT_SECONDS = env_int("OBSERVATORY_ALERT_SECONDS", 60)
# Test analysis (flaky tests, regressions, pass-rate days) is refreshed this long after the first
# test results that change it; beat analyses projects whose refresh was lost on this period.
OBSERVATORY_TEST_ANALYSIS_DEBOUNCE_SECONDS = env_int(
    "OBSERVATORY_TEST_ANALYSIS_DEBOUNCE_SECONDS", 10
)
OBSERVATORY_TEST_ANALYSIS_SWEEP_SECONDS = env_int("OBSERVATORY_TEST_ANALYSIS_SWEEP_SECONDS", 300)
OBSERVATORY_REPORT_SECONDS = env_int("OBSERVATORY_REPORT_SECONDS", 3600)
OBSERVATORY_WEBHOOK_TIMEOUT_SECONDS = env_int("OBSERVATORY_WEBHOOK_TIMEOUT_SECONDS", 5)
# Data lifecycle (docs/lifecycle.md): days raw telemetry and derived data (sessions with their
# summaries, rollups, anomalies, incidents) are kept when a project sets none; 0 keeps forever.
# Beat enforces them every OBSERVATORY_RETENTION_SECONDS, deleting in batches of this many rows.
OBSERVATORY_RAW_RETENTION_DAYS = env_int("OBSERVATORY_RAW_RETENTION_DAYS", 90)
OBSERVATORY_DERIVED_RETENTION_DAYS = env_int("OBSERVATORY_DERIVED_RETENTION_DAYS", 400)
OBSERVATORY_RETENTION_SECONDS = env_int("OBSERVATORY_RETENTION_SECONDS", 3600)
OBSERVATORY_DELETE_BATCH_ROWS = env_int("OBSERVATORY_DELETE_BATCH_ROWS", 5000)
# An erasure or session deletion of at most this many sessions runs in the request; more go to
# the worker.
OBSERVATORY_ERASE_INLINE_SESSIONS = env_int("OBSERVATORY_ERASE_INLINE_SESSIONS", 20)
# Webhooks to loopback, private, link-local (metadata) and shared addresses are refused unless
# this is true: a member-typed URL must not make the server probe its own network.
OBSERVATORY_WEBHOOK_ALLOW_PRIVATE = env_bool("OBSERVATORY_WEBHOOK_ALLOW_PRIVATE", False)

# Email for alerts and reports. Without EMAIL_HOST, mail is written to the log (console backend).
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "observatory@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

CELERY_BEAT_SCHEDULE = {
    "sweep-stale-session-summaries": {
        "task": "analytics.tasks.sweep_stale_summaries_task",
        "schedule": float(OBSERVATORY_SUMMARY_SWEEP_SECONDS),
    },
    "sweep-pending-analytics": {
        "task": "analytics.tasks.sweep_pending_refreshes_task",
        "schedule": float(OBSERVATORY_ANALYTICS_SWEEP_SECONDS),
    },
    "evaluate-alert-rules": {
        "task": "analytics.tasks.evaluate_alerts_task",
        "schedule": float(OBSERVATORY_ALERT_SECONDS),
    },
    "sweep-test-analysis": {
        "task": "analytics.tasks.sweep_test_analysis_task",
        "schedule": float(OBSERVATORY_TEST_ANALYSIS_SWEEP_SECONDS),
    },
    "make-reports": {
        "task": "analytics.tasks.make_reports_task",
        "schedule": float(OBSERVATORY_REPORT_SECONDS),
    },
    "land-pending-requests": {
        "task": "ingest.tasks.land_pending_requests_task",
        "schedule": float(OBSERVATORY_LANDING_SWEEP_SECONDS),
    },
    "enforce-retention": {
        "task": "ingest.tasks.enforce_retention_task",
        "schedule": float(OBSERVATORY_RETENTION_SECONDS),
    },
}
# A periodic task still queued when the next one is due is dropped by the worker: the next one
# does the same work. Without this, a worker that fell behind found a sweep queued every 30 s
# (22 of the 152 tasks waiting in the soak, bench/README.md), each redoing the summaries that
# the queued ingest tasks were about to rebuild.
for _entry in CELERY_BEAT_SCHEDULE.values():
    _entry["options"] = {"expires": _entry["schedule"]}
