"""The one settings module: every value comes from the environment, with safe defaults.

Production must set SECRET_KEY, DATABASE_URL and REDIS_URL; `python3 dev.py up|test` sets all three
for local use (embedded PostgreSQL and Redis when the URLs are not given).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: str = "False") -> bool:
    return os.environ.get(name, default).strip().lower() in {"1", "true", "yes", "on"}


def envint(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def envdays(name: str) -> int | None:
    """A number of days, or None when unset or empty (kept forever)."""
    value = os.environ.get(name, "")
    return int(value) if value.strip() else None


def envfloat(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value.strip() else default


def envstr(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def envlist(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


def envrequired(name: str) -> str:
    value = envstr(name)
    if not value:
        raise ImproperlyConfigured(f"{name} must be set (see README: Settings)")
    return value


DEBUG = envbool("DEBUG")
# A missing secret in production is a loud failure, never a silent default.
SECRET_KEY = envstr("SECRET_KEY") or ("insecure-debug-only-key" if DEBUG else envrequired("SECRET_KEY"))
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")
SITE_NAME = envstr("SITE_NAME", "Moderation console")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",  # ArrayField (API token scopes); PostgreSQL is the only database
    "django_htmx",
    "django_rq",
    "channels",
    "axes",
    "audit",
    "accounts",
    "policies_app",
    "console",
    "evaluations",
    "enforcement",  # before api: its item_decided receiver records actions the webhook payload carries
    "privacy",
    "reasoner",
    "api",
    "demo",
]

MIDDLEWARE = [
    "console.request_ids.RequestIdMiddleware",  # first: every log line of a request carries its id
    "console.metrics.RequestMetricsMiddleware",  # times everything below, static files included
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks: it answers a locked-out login
]

# Login throttling (django-axes) on both login forms, the console's and the admin's: after
# LOGIN_FAILURE_LIMIT failed attempts for one account, or from one address, logins are refused for
# LOGIN_COOLOFF_MINUTES (429), even with the right password. A successful login resets the count.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=envint("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one locks
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

ROOT_URLCONF = "console.urls"
ASGI_APPLICATION = "console.asgi.application"
WSGI_APPLICATION = "console.wsgi.application"

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
                "django.template.context_processors.csp",
                "console.context_processors.console",
            ],
        },
    },
]

DATABASE_URL = envstr("DATABASE_URL")
if not DATABASE_URL:
    raise ImproperlyConfigured(
        "DATABASE_URL must be set; `python3 dev.py up` starts an embedded PostgreSQL and sets it for you"
    )
# 0: each request (and each job) closes its connection when done. Under ASGI a persistent connection
# belongs to whichever worker thread ran the request and is never reused, so with any other value daphne
# kept up to one per thread per request burst (87 in the test below) until PostgreSQL refused everyone
# (tests/api/test_connections.py). Opening a connection on the local socket costs about a millisecond.
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=envint("DB_CONN_MAX_AGE", 0))}
if not DATABASES["default"]["ENGINE"].endswith("postgresql"):
    raise ImproperlyConfigured("The console runs on PostgreSQL only (its constraints and triggers need it)")
DATABASES["default"].setdefault("TEST", {})["NAME"] = envstr("TEST_DATABASE_NAME") or None
# Two roles (README: Two database roles): DATABASE_URL is the application's, DATABASE_OWNER_URL (optional)
# the tables' owner's. `migrate` connects as the owner and then grants the application's role what the
# console needs, which on the audit trail is SELECT and INSERT alone. Unset: the application is the owner.
DATABASE_OWNER: dict[str, object] = {}  # the owner's credentials for the default database
DATABASE_APP_ROLE = ""
if DATABASE_OWNER_URL := envstr("DATABASE_OWNER_URL"):
    _owner, _app = dj_database_url.parse(DATABASE_OWNER_URL), DATABASES["default"]
    if _owner["NAME"] != _app["NAME"]:
        raise ImproperlyConfigured("DATABASE_OWNER_URL must name the database DATABASE_URL names")
    if not _app["USER"] or _app["USER"] == _owner["USER"]:
        raise ImproperlyConfigured("With DATABASE_OWNER_URL set, DATABASE_URL must name the application's own "
                                   "role (a user that is not the owner)")
    DATABASE_APP_ROLE = _app["USER"]
    # The whole address too: the owner may reach the server another way (a socket, sslmode).
    DATABASE_OWNER = {**{key: _owner[key] for key in ("USER", "PASSWORD", "HOST", "PORT")},
                      "OPTIONS": _owner.get("OPTIONS", {})}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = envstr("REDIS_URL")
if not REDIS_URL:
    raise ImproperlyConfigured("REDIS_URL must be set; `python3 dev.py up` starts an embedded Redis for you")

RQ_QUEUES = {
    name: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 600}
    for name in ("default", "reasoner", "webhooks")
}
# Jobs are only enqueued once the transaction that created their rows has committed.
RQ = {"COMMIT_MODE": "on_db_commit"}
RQ_SHOW_ADMIN_LINK = False  # django-rq's dashboard stays unmounted (console/urls.py says why)

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # Consumers wait on Redis up to 5 s at a time (BZPOPMIN); redis-py 8's default 5 s socket
            # timeout cut those reads off and closed every idle live page, so reads may take longer.
            "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
            "prefix": envstr("CHANNELS_PREFIX", "console"),
        },
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "console:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = envstr("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(envstr("STATIC_ROOT") or BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

SESSION_COOKIE_HTTPONLY = True
SECURE_COOKIES = envbool("SECURE_COOKIES")
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
# Behind HTTPS, browsers are told to come back only over HTTPS (a year, as browsers' preload lists ask).
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31_536_000 if SECURE_COOKIES else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS")
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# htmx and our scripts are served from /static: no inline script, no CDN.
SECURE_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
}

# "json": one JSON object per line (timestamp, level, logger, message, request_id during a request, and
# an exception's traceback inside the same object) for log pipelines; "text": the message alone.
LOG_FORMAT = envstr("LOG_FORMAT", "text").lower()
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured("LOG_FORMAT must be 'text' or 'json'")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "console.request_ids.RequestIdFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": True,  # ISO 8601, UTC
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["request_id"],
                    **({"formatter": "json"} if LOG_FORMAT == "json" else {})},
    },
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {
        # Named here so Django's own handlers (its DEBUG-only console, mail_admins: ADMINS is never set)
        # are dropped: Django's records reach the root handler alone, once, in LOG_FORMAT.
        "django": {"level": "INFO"},
        "django.db.backends": {"level": "INFO"},
    },
}

# --- The model engine (see README: Engines) -------------------------------------------------------
# Empty means no model is configured: reasoner work waits (queued) and the console says so.
SAFEGUARD_BACKEND = envstr("SAFEGUARD_BACKEND")  # "", "vllm", "openai", or "scripted" (tests only)
SAFEGUARD_MODEL = envstr("SAFEGUARD_MODEL", "openai/gpt-oss-safeguard-20b")
# OpenAI-compatible server(s), e.g. http://gpu:8000/v1; several, separated by commas or spaces, share the load
SAFEGUARD_BASE_URL = envstr("SAFEGUARD_BASE_URL")
SAFEGUARD_API_KEY = envstr("SAFEGUARD_API_KEY")
SAFEGUARD_TIMEOUT_S = envfloat("SAFEGUARD_TIMEOUT_S", 120.0)
SAFEGUARD_MAX_RETRIES = envint("SAFEGUARD_MAX_RETRIES", 3)
SAFEGUARD_CONCURRENCY = envint("SAFEGUARD_CONCURRENCY", 32)
SAFEGUARD_MAX_TOKENS = envint("SAFEGUARD_MAX_TOKENS", 4096)  # output budget: reasoning plus answer
SAFEGUARD_CONTEXT_TOKENS = envint("SAFEGUARD_CONTEXT_TOKENS", 131072)
SAFEGUARD_BATCH_SIZE = envint("SAFEGUARD_BATCH_SIZE", 64)  # most prompts handed to the engine at once
SAFEGUARD_BATCH_WAIT_MS = envint("SAFEGUARD_BATCH_WAIT_MS", 50)  # longest wait to fill a batch
# A worker renews the leases of what it holds every third of SAFEGUARD_LEASE_S while the engine runs, so
# a dead worker's rows are re-queued within about 1.3 leases; a row running longer than
# SAFEGUARD_MAX_RUN_S is no longer renewed (its worker is hung, not slow) and is re-queued too.
SAFEGUARD_LEASE_S = envint("SAFEGUARD_LEASE_S", 30)
SAFEGUARD_MAX_RUN_S = envint("SAFEGUARD_MAX_RUN_S", 1800)
# Evaluation runs share the workers with live traffic at a lower priority: a batch takes evaluation
# results only once no live work is queued, and at most this many, so a live item that arrives meanwhile
# waits for a short batch at worst.
SAFEGUARD_EVAL_BATCH_SIZE = envint("SAFEGUARD_EVAL_BATCH_SIZE", 16)
# ... while live items flowed in the last SAFEGUARD_EVAL_QUIET_S seconds; after that, whole batches.
SAFEGUARD_EVAL_QUIET_S = envfloat("SAFEGUARD_EVAL_QUIET_S", 5.0)
# A draft whose recall on a labelled set marked "required" falls below the published version's by more
# than this cannot be published (an admin can publish anyway, with a reason).
EVAL_PUBLISH_RECALL_MARGIN = envfloat("EVAL_PUBLISH_RECALL_MARGIN", 0.02)
SAFEGUARD_ATTEMPTS = envint("SAFEGUARD_ATTEMPTS", 3)  # engine errors retried this often, then failed
SAFEGUARD_VLLM_GPU_MEMORY_UTILIZATION = envfloat("SAFEGUARD_VLLM_GPU_MEMORY_UTILIZATION", 0.90)
SAFEGUARD_VLLM_TENSOR_PARALLEL_SIZE = envint("SAFEGUARD_VLLM_TENSOR_PARALLEL_SIZE", 1)
SAFEGUARD_SCRIPTED_LATENCY_S = envfloat("SAFEGUARD_SCRIPTED_LATENCY_S", 0.0)
# The reasoner worker's own Prometheus exposition (engine metrics): 0 is off. Loopback by default, as
# the web app's /metrics without a token; 0.0.0.0 for a scraper on another host (no token there).
SAFEGUARD_METRICS_PORT = envint("SAFEGUARD_METRICS_PORT", 0)
SAFEGUARD_METRICS_ADDR = envstr("SAFEGUARD_METRICS_ADDR", "127.0.0.1")

# --- Metrics (see README: Operations) --------------------------------------------------------------
# Set: /metrics wants "Authorization: Bearer <token>". Empty: /metrics answers loopback clients only.
METRICS_TOKEN = envstr("METRICS_TOKEN")

# --- Labelled sets (see README: Labelled sets and policy packs) -----------------------------------------
LABELED_SET_MAX_BYTES = envint("LABELED_SET_MAX_BYTES", 50 * 1024 * 1024)  # one imported file (uncompressed)
# Uploads wait here between the upload and the mapping step (named by a random token tied to the session,
# removed after the import or a day later).
LABELED_SET_UPLOAD_DIR = Path(envstr("LABELED_SET_UPLOAD_DIR")
                              or Path(envstr("CONSOLE_DATA_DIR") or BASE_DIR / "data") / "uploads")

# --- Ingestion API, first pass and webhooks (see README: API) ---------------------------------------
API_MAX_BODY_BYTES = envint("API_MAX_BODY_BYTES", 16 * 1024 * 1024)  # larger request bodies get 413
API_MAX_BATCH = envint("API_MAX_BATCH", 1000)  # items per batch request (and inputs per moderation call)
API_MAX_CONTENT_CHARS = envint("API_MAX_CONTENT_CHARS", 200_000)  # characters of one item's text
API_RATE_LIMIT_PER_MINUTE = envint("API_RATE_LIMIT_PER_MINUTE", 600)  # requests per token; clients may override
API_TOKEN_DEFAULT_DAYS = envint("API_TOKEN_DEFAULT_DAYS", 90)  # lifetime of a new API token; 0: never expires
if API_TOKEN_DEFAULT_DAYS < 0:
    raise ImproperlyConfigured("API_TOKEN_DEFAULT_DAYS must be 0 (never expires) or a number of days")
# While Redis cannot count requests: "open" lets them through uncounted (the API keeps ingesting),
# "closed" answers a JSON 503 with Retry-After. Either way a request never gets an HTML 500.
API_RATE_LIMIT_WITHOUT_REDIS = envstr("API_RATE_LIMIT_WITHOUT_REDIS", "open").lower()
if API_RATE_LIMIT_WITHOUT_REDIS not in {"open", "closed"}:
    raise ImproperlyConfigured("API_RATE_LIMIT_WITHOUT_REDIS must be 'open' or 'closed'")
API_MAX_WAIT_S = envfloat("API_MAX_WAIT_S", 30.0)  # longest ?wait= a request may hold a server thread
API_WAIT_POLL_S = envfloat("API_WAIT_POLL_S", 0.2)
# Policies (slugs) that /v1/moderations applies; empty: the calling client's default set.
API_MODERATION_POLICIES = envlist("API_MODERATION_POLICIES")
API_MODERATION_WAIT_S = envfloat("API_MODERATION_WAIT_S", 10.0)  # how long /v1/moderations waits for verdicts
# Webhook hosts allowed although they resolve to loopback, private or link-local addresses (a receiver
# on the same network). Every other such URL is refused when saved and again before each delivery, so
# an admin cannot point the console at its own internals.
WEBHOOK_ALLOWED_HOSTS = envlist("WEBHOOK_ALLOWED_HOSTS")
WEBHOOK_TIMEOUT_S = envfloat("WEBHOOK_TIMEOUT_S", 10.0)
WEBHOOK_MAX_ATTEMPTS = envint("WEBHOOK_MAX_ATTEMPTS", 8)
WEBHOOK_BACKOFF_S = envfloat("WEBHOOK_BACKOFF_S", 30.0)  # first retry delay; doubles on each failure
WEBHOOK_BACKOFF_MAX_S = envfloat("WEBHOOK_BACKOFF_MAX_S", 3600.0)
# Statements of reasons (enforcement/): the redress routes told to the people moderated, the Transparency
# Database category for codes whose rule names none, the territorial scope (country codes) and an optional
# link to the terms and conditions (decision_ground_reference_url).
ENFORCEMENT_REDRESS_TEXT = envstr(
    "ENFORCEMENT_REDRESS_TEXT",
    "You can contest this decision through the platform's internal complaint-handling system, an out-of-court "
    "dispute settlement body, or the courts.",
)
ENFORCEMENT_TDB_CATEGORY = envstr("ENFORCEMENT_TDB_CATEGORY", "STATEMENT_CATEGORY_OTHER_VIOLATION_TC")
# How long a complaint may wait for its decision before it shows as overdue (DSA Art. 20 asks for "timely").
APPEAL_DEADLINE_DAYS = envint("APPEAL_DEADLINE_DAYS", 7)
ENFORCEMENT_TERRITORIAL_SCOPE = envlist(
    "ENFORCEMENT_TERRITORIAL_SCOPE",
    "AT,BE,BG,CY,CZ,DE,DK,EE,ES,FI,FR,GR,HR,HU,IE,IT,LT,LU,LV,MT,NL,PL,PT,RO,SE,SI,SK",
)
ENFORCEMENT_TERMS_URL = envstr("ENFORCEMENT_TERMS_URL")
# Retention for sources without a rule of their own (privacy.RetentionRule): days to keep an item's
# content, the model's reasoning and its raw outputs; unset keeps them forever.
RETENTION_CONTENT_DAYS = envdays("RETENTION_CONTENT_DAYS")
RETENTION_REASONING_DAYS = envdays("RETENTION_REASONING_DAYS")
RETENTION_RAW_OUTPUT_DAYS = envdays("RETENTION_RAW_OUTPUT_DAYS")
RETENTION_EVERY_S = envint("RETENTION_EVERY_S", 86400)  # the scheduled retention run; 0: none
RETENTION_BATCH = envint("RETENTION_BATCH", 2000)  # items per retention transaction
API_PERIODIC_JOBS = envbool("API_PERIODIC_JOBS", "True")  # false: start no retrain/sweep chains (benchmarks)
FIRST_PASS_RETRAIN_INTERVAL_S = envint("FIRST_PASS_RETRAIN_INTERVAL_S", 3600)  # 0: no scheduled retraining
AUDIT_VERIFY_EVERY_S = envint("AUDIT_VERIFY_EVERY_S", 3600)  # the audit chain's scheduled check; 0: none
FIRST_PASS_MIN_EXAMPLES = envint("FIRST_PASS_MIN_EXAMPLES", 20)  # fewer labelled items: no model (all to reasoner)
FIRST_PASS_MIN_PER_CLASS = envint("FIRST_PASS_MIN_PER_CLASS", 5)
FIRST_PASS_MAX_EXAMPLES = envint("FIRST_PASS_MAX_EXAMPLES", 200_000)  # newest labelled items used per retrain
# Routing thresholds for policy versions that have no rule of their own (nor an earlier version's).
FIRST_PASS_SAFE_BELOW = envfloat("FIRST_PASS_SAFE_BELOW", 0.1)
FIRST_PASS_VIOLATION_ABOVE = envfloat("FIRST_PASS_VIOLATION_ABOVE", 0.9)
FIRST_PASS_QC_SAMPLE_RATE = envfloat("FIRST_PASS_QC_SAMPLE_RATE", 0.02)
# Quality checks aimed at the closures most likely to be wrong: of the items closing with a score in the
# top BAND share of the closing range (at least safe_below * (1 - BAND)), this share also goes to people.
FIRST_PASS_QC_TARGETED_RATE = envfloat("FIRST_PASS_QC_TARGETED_RATE", 0.05)
FIRST_PASS_QC_TARGETED_BAND = envfloat("FIRST_PASS_QC_TARGETED_BAND", 0.5)
# External first passes (a moderation endpoint per policy): hosts allowed although they resolve to
# loopback or private addresses (a guard model on the same network), as WEBHOOK_ALLOWED_HOSTS for
# webhooks; and the most texts one request carries (a larger intake batch is sent in several).
FIRST_PASS_ALLOWED_HOSTS = envlist("FIRST_PASS_ALLOWED_HOSTS")
FIRST_PASS_EXTERNAL_BATCH = envint("FIRST_PASS_EXTERNAL_BATCH", 100)
# Retraining applies its own close threshold (api.training) only when nested cross-validation shows the
# held-out recall meets the target over enough held-out violations; the threshold is chosen on training
# folds for the target plus the margin, which absorbs the optimism of choosing it on training data.
FIRST_PASS_RECALL_TARGET = envfloat("FIRST_PASS_RECALL_TARGET", 0.95)
FIRST_PASS_RECALL_MARGIN = envfloat("FIRST_PASS_RECALL_MARGIN", 0.02)
FIRST_PASS_RECALL_MIN_VIOLATIONS = envint("FIRST_PASS_RECALL_MIN_VIOLATIONS", 100)  # fewer: recall is not checkable
# A category (with at least the minimum of held-out violations) whose held-out recall is under the floor
# makes its policy close nothing: the first pass has no category scores to single its items out.
FIRST_PASS_CATEGORY_RECALL_FLOOR = envfloat("FIRST_PASS_CATEGORY_RECALL_FLOOR", 0.85)
FIRST_PASS_CATEGORY_MIN_VIOLATIONS = envint("FIRST_PASS_CATEGORY_MIN_VIOLATIONS", 20)
