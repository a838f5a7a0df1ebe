"""Promptledger's one settings module, configured by environment variables.

The defaults run the embedded mode (SQLite in ``var/``, a filesystem Celery broker, the offline
provider); ``DJANGO_ENV=production`` switches on the hardening that ``check --deploy`` asks for.
"""

import datetime
from pathlib import Path

import dj_database_url
from celery.schedules import crontab

from config.environment import Environment

# Every variable is read through `env`: typed, and a bad value is reported (with every other bad one)
# by env.check() at the end of this module, naming the variable and what it allows. Importing this
# module reads the environment and nothing else: the folders under PROMPTLEDGER_VAR_DIR are made
# when a process starts (core.runtime_dirs), not here.
env = Environment()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env.str("PROMPTLEDGER_VAR_DIR", str(BASE_DIR / "var")))

PRODUCTION = env.choice("DJANGO_ENV", "development", ("development", "production")) == "production"

DEBUG = env.bool("DEBUG", not PRODUCTION)
SECRET_KEY = env.str("SECRET_KEY", "")
if not SECRET_KEY:
    env.require(not PRODUCTION, "SECRET_KEY", "must be set when DJANGO_ENV=production",
                "a long random string (python -c 'import secrets; print(secrets.token_urlsafe(50))')")
    SECRET_KEY = "insecure-development-key-change-me-" + "x" * 32  # noqa: S105 - dev only
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "simple_history",
    "axes",
    "core",
    "registry",
    "audit",
    "evals",
    "approvals",
    "webhooks",
    "risk",  # the model register's pages, quarterly reviews, the overdue-review deploy rule
    "sso",  # OpenID Connect sign-in (off until PROMPTLEDGER_OIDC_ISSUER is set); nothing imports it
    "config",  # the deployment's own checks (config.checks: signing key, sink, database, broker)
    "demo",  # optional: the demo data and `manage.py bootstrap_demo`; no other app imports it
]

MIDDLEWARE = [
    "config.middleware.RequestIdMiddleware",  # first: every request has an id and an access line, redirects too
    "config.resolve_path.ResolveFastPathMiddleware",  # answers bearer-token resolves itself (docs/resolve-cache.md)
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "sso.middleware.SessionRefresh",  # SSO sessions re-checked at the IdP every few minutes
    "django.contrib.messages.middleware.MessageMiddleware",
    "config.middleware.RequestSizeMiddleware",
    "config.middleware.StorableInputMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "axes.middleware.AxesMiddleware",  # last: it turns a locked-out sign-in into the lockout page
]

# --- Sign-in throttling (django-axes) -------------------------------------------------------------
# After AXES_FAILURE_LIMIT wrong passwords for one username from one address, that pair is locked
# out for AXES_COOLOFF_TIME (every attempt meanwhile fails without checking the password, and adds
# nothing to the audit trail). `manage.py axes_reset_username NAME` (or axes_reset) unlocks early.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "sso.backends.LocalPasswordBackend",  # Django's ModelBackend, refusing passwords in SSO-only mode
    "sso.backends.OIDCBackend",  # the OIDC callback's (sso.views.Callback) only
]
AXES_FAILURE_LIMIT = env.int("PROMPTLEDGER_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = datetime.timedelta(minutes=env.int("PROMPTLEDGER_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "core.request_context.client_ip_of_request"
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins are in the audit trail already
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429

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
                "config.navigation.nav_badges",  # who gets the navigation's counts (issue 17)
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------
# Owner-only from the start: the SQLite database, the audit signing key and the broker live here
# (core.runtime_dirs makes it 0700 when a process starts; core.private_files keeps the database files
# 0600 and the directory 0700 on every connection).
DATABASE_URL = env.str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'promptledger.sqlite3'}")
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=600, conn_health_checks=True)}
except ValueError as _exc:
    env.require(False, "DATABASE_URL", f"cannot be read ({_exc})",
                "postgres://USER:PASSWORD@HOST:5432/NAME, or sqlite:///PATH")
    DATABASES = {"default": dj_database_url.parse(f"sqlite:///{VAR_DIR / 'promptledger.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers go on while the worker writes; IMMEDIATE takes the write lock at BEGIN so
    # two writers queue on busy_timeout instead of failing with "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-promptledger.sqlite3")}
else:
    # Server-side binding: parameters travel apart from the SQL, and psycopg prepares a statement
    # a connection runs often (its prepare_threshold), so neither side re-parses it per request.
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "registry:prompt-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION

# --- Promptledger -------------------------------------------------------------------------------
PROMPTLEDGER_ENVIRONMENTS = env.list("PROMPTLEDGER_ENVIRONMENTS", "development,staging,production")
PROMPTLEDGER_DATA_CATEGORIES = env.list(
    "PROMPTLEDGER_DATA_CATEGORIES", "pii,phi,financial,pci,credentials,minors,biometric,location,legal"
)
PROMPTLEDGER_MAX_TEMPLATE_BYTES = env.int("PROMPTLEDGER_MAX_TEMPLATE_BYTES", 100 * 1024, minimum=1024)
# Approving a request whose tier policy asks for it (Tier-0 by default) in the browser needs the
# password again when the sign-in is older than this many seconds (an electronic signature).
PROMPTLEDGER_REAUTH_MAX_AGE = env.int("PROMPTLEDGER_REAUTH_MAX_AGE", 300, minimum=0)
# --- Review page (issue 17) ---
# A password typed to sign a decision in the browser signs this session's further decisions for
# this many seconds (recorded as that password signature, at the time it was typed).
PROMPTLEDGER_SIGNATURE_WINDOW = env.int("PROMPTLEDGER_SIGNATURE_WINDOW", 300, minimum=0)
# An API token lives at most this many days (90 when its issuer names no expiry).
PROMPTLEDGER_TOKEN_MAX_DAYS = env.int("PROMPTLEDGER_TOKEN_MAX_DAYS", 365, minimum=1)

# The audit trail: checkpoints are signed with an Ed25519 key kept outside the database, written
# every N events and at least every CHECKPOINT_SECONDS (a heartbeat), and appended to a sink file.
PROMPTLEDGER_AUDIT_SIGNING_KEY = env.str("PROMPTLEDGER_AUDIT_SIGNING_KEY", "")
PROMPTLEDGER_AUDIT_SIGNING_KEY_FILE = env.str("PROMPTLEDGER_AUDIT_SIGNING_KEY_FILE", str(VAR_DIR / "audit-signing.key"))
PROMPTLEDGER_AUDIT_SINK = env.str("PROMPTLEDGER_AUDIT_SINK", str(VAR_DIR / "audit-checkpoints.jsonl"))
PROMPTLEDGER_AUDIT_CHECKPOINT_EVERY = env.int("PROMPTLEDGER_AUDIT_CHECKPOINT_EVERY", 1000, minimum=1)
PROMPTLEDGER_AUDIT_CHECKPOINT_SECONDS = env.int("PROMPTLEDGER_AUDIT_CHECKPOINT_SECONDS", 3600, minimum=1)

# --- Audit signing key rotation ---
# Retired audit signing keys: the PUBLIC keys (base64) of keys that signed before a rotation, so older
# checkpoints and exports still verify (docs/audit-keys.md). Kept outside the database on purpose:
# whoever can write the database must not be able to add a key. A comma list here, and/or
# the file below, one key a line (# comments); `manage.py audit_rotate_key` appends to the file.
PROMPTLEDGER_AUDIT_RETIRED_KEYS = env.list("PROMPTLEDGER_AUDIT_RETIRED_KEYS", "")
PROMPTLEDGER_AUDIT_RETIRED_KEYS_FILE = env.str(
    "PROMPTLEDGER_AUDIT_RETIRED_KEYS_FILE", str(VAR_DIR / "audit-retired-keys")
)

# --- Evals --------------------------------------------------------------------------------------
# The judge model of llm_judge assertions that name none (the offline one answers deterministically).
PROMPTLEDGER_JUDGE_PROVIDER = env.str("PROMPTLEDGER_JUDGE_PROVIDER", "offline")
PROMPTLEDGER_JUDGE_MODEL = env.str("PROMPTLEDGER_JUDGE_MODEL", "offline-judge-1")

# --- Providers ----------------------------------------------------------------------------------
# OPENAI_API_KEY, OPENAI_BASE_URL (any OpenAI-compatible server, e.g. http://localhost:11434/v1),
# ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL are read from the environment at each call
# (evals.providers.base.secret); None here means "ask the environment". Keys are never stored in the
# database, results, logs or audit events.
OPENAI_API_KEY = None
OPENAI_BASE_URL = None
ANTHROPIC_API_KEY = None
ANTHROPIC_BASE_URL = None
# Per provider and per event loop: requests in flight, requests a minute (0 = unlimited), seconds
# an attempt may take, retries after the first attempt, and the full-jitter backoff's base and cap
# (a Retry-After longer than the cap fails the call instead of retrying early).
PROMPTLEDGER_PROVIDER_CONCURRENCY = env.int("PROMPTLEDGER_PROVIDER_CONCURRENCY", 32, minimum=1)
PROMPTLEDGER_PROVIDER_RPM = env.float("PROMPTLEDGER_PROVIDER_RPM", 600, minimum=0)
PROMPTLEDGER_PROVIDER_TIMEOUT = env.float("PROMPTLEDGER_PROVIDER_TIMEOUT", 60, minimum=0.1)
PROMPTLEDGER_PROVIDER_MAX_RETRIES = env.int("PROMPTLEDGER_PROVIDER_MAX_RETRIES", 4, minimum=0)
PROMPTLEDGER_PROVIDER_BACKOFF_BASE = env.float("PROMPTLEDGER_PROVIDER_BACKOFF_BASE", 0.5, minimum=0)
PROMPTLEDGER_PROVIDER_BACKOFF_MAX = env.float("PROMPTLEDGER_PROVIDER_BACKOFF_MAX", 20, minimum=0)
# Per-provider overrides, e.g. PROMPTLEDGER_PROVIDER_RPM_ANTHROPIC=50 → {"anthropic": {"RPM": 50.0}}.
PROMPTLEDGER_PROVIDER_OVERRIDES = {
    _provider: {
        _name: _value
        for _name in ("CONCURRENCY", "RPM", "TIMEOUT", "MAX_RETRIES", "BACKOFF_BASE", "BACKOFF_MAX")
        if (_value := env.float(f"PROMPTLEDGER_PROVIDER_{_name}_{_provider.upper()}", None, minimum=0)) is not None
    }
    for _provider in ("openai", "anthropic")
}
# Anthropic requires max_tokens; this is sent when a version's params name none.
PROMPTLEDGER_PROVIDER_MAX_TOKENS = env.int("PROMPTLEDGER_PROVIDER_MAX_TOKENS", 1024, minimum=1)
# The offline provider's (deterministic) answer time, for demos that want to watch progress.
PROMPTLEDGER_OFFLINE_LATENCY_MS = env.float("PROMPTLEDGER_OFFLINE_LATENCY_MS", 0, minimum=0)

# --- Single sign-on (OIDC) -----------------------------------------------------------------------
# OpenID Connect sign-in (the sso app, on mozilla-django-oidc; docs/sso.md). Off while no issuer is
# set. The endpoints come from the issuer's discovery document, fetched on first use (never at
# import) and kept for an hour; `manage.py sso_check` fetches it and says what it found.
PROMPTLEDGER_OIDC_ISSUER = env.str("PROMPTLEDGER_OIDC_ISSUER", "").rstrip("/")
# The client registered at the IdP; the redirect URI to register is https://<host>/sso/callback/.
OIDC_RP_CLIENT_ID = env.str("PROMPTLEDGER_OIDC_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = env.str("PROMPTLEDGER_OIDC_CLIENT_SECRET", "")
OIDC_RP_SCOPES = env.str("PROMPTLEDGER_OIDC_SCOPES", "openid email profile")
# The claim naming the Promptledger username, and the one listing the person's IdP groups.
PROMPTLEDGER_OIDC_USERNAME_CLAIM = env.str("PROMPTLEDGER_OIDC_USERNAME_CLAIM", "preferred_username")
PROMPTLEDGER_OIDC_GROUPS_CLAIM = env.str("PROMPTLEDGER_OIDC_GROUPS_CLAIM", "groups")
# What the login page's button says: "Sign in with <name>".
PROMPTLEDGER_OIDC_DISPLAY_NAME = env.str("PROMPTLEDGER_OIDC_DISPLAY_NAME", "single sign-on")
# IdP groups → roles, JSON: {"payments-approvers": {"team": "payments", "role": "approver"},
# "auditors": {"site_role": "compliance"}} (a list of such grants per group also works). Applied at
# every sign-in; the teams and site roles named here are the IdP's to grant and take away.
PROMPTLEDGER_OIDC_GROUP_MAP = env.str("PROMPTLEDGER_OIDC_GROUP_MAP", "{}")
# Seconds of clock difference tolerated on the ID token's exp and iat.
PROMPTLEDGER_OIDC_CLOCK_SKEW = env.int("PROMPTLEDGER_OIDC_CLOCK_SKEW", 60, minimum=0, maximum=600)
# A signed-in SSO session asks the IdP again (prompt=none) after this many seconds: a person
# disabled at the IdP is signed out within it.
OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS = env.int("PROMPTLEDGER_OIDC_REFRESH_SECONDS", 300, minimum=10)
# Password sign-in off for everyone but these comma-separated local break-glass accounts.
PROMPTLEDGER_SSO_ONLY = env.bool("PROMPTLEDGER_SSO_ONLY", False)
PROMPTLEDGER_BREAK_GLASS_ACCOUNTS = env.list("PROMPTLEDGER_BREAK_GLASS_ACCOUNTS")
# A first sign-in whose username is already a local account links to it only when this is on.
PROMPTLEDGER_OIDC_LINK_BY_USERNAME = env.bool("PROMPTLEDGER_OIDC_LINK_BY_USERNAME", False)
# Fixed for this integration: RS256 ID tokens checked against the IdP's JWKS, PKCE S256, a nonce.
OIDC_RP_SIGN_ALGO = "RS256"
OIDC_USE_PKCE = True
OIDC_USE_NONCE = True
OIDC_TIMEOUT = 10
LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/?sso=failed"

# --- REST API -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "registry.api.pagination.PagePagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "registry.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["registry.api.parsers.JSONParser"],
    "DEFAULT_METADATA_CLASS": "registry.api.metadata.EndpointMetadata",
    "DEFAULT_THROTTLE_CLASSES": [
        "core.throttling.TokenRateThrottle", "core.throttling.AddressRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "token": env.str("PROMPTLEDGER_API_RATE", "6000/min"),
        "anon": env.str("PROMPTLEDGER_ANON_RATE", "600/min"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "URL_FORMAT_OVERRIDE": None,
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

# Every page: scripts, styles, images and connections from this origin only, no inline script, no
# framing. Swagger UI and Redoc are vendored (drf-spectacular-sidecar) and start from a script file.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Promptledger API",
    "DESCRIPTION": (
        "Versioned, tiered prompts; eval gates; reviewed deploys; a verifiable audit trail. "
        "Authenticate with `Authorization: Bearer <token>` (issue one with `manage.py issue_token`). "
        'Errors are JSON: `{"code": "...", "detail": "...", "field_errors": {...}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The schema and the docs: anyone signed in (a session or a token); in production not the world.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"] if PRODUCTION else
    ["rest_framework.permissions.AllowAny"],
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "LLMModelStatusEnum": "registry.models.LLMModel.STATUS_CHOICES",
        "MessageDiffStatusEnum": ["added", "removed", "changed", "unchanged"],
        "DeployRequestKindEnum": "approvals.models.DeployRequest.KIND_CHOICES",
        "DeployRequestStatusEnum": "approvals.models.DeployRequest.STATUS_CHOICES",
        "ModelReviewDecisionEnum": "risk.models.ModelReview.DECISION_CHOICES",  # risk: a review's decision
    },
    "APPEND_COMPONENTS": {
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
    },
    "SECURITY": [{"bearerAuth": []}],
}

# --- Drift alerts -------------------------------------------------------------------------------
# Nightly at PROMPTLEDGER_DRIFT_HOUR (CELERY_TIMEZONE) the gate suites of every version live in
# production run again (evals.drift). A run below its gate's min_pass_rate, or more than the gate's
# max_regression (PROMPTLEDGER_DRIFT_MAX_DROP when it has none) under the previous nightly run,
# writes a notice on the prompt and emits the webhook event drift.alert (see Webhooks below). The
# ALERT_WEBHOOK URL and SECRET, when both are set, become a site-wide subscription to drift.alert,
# kept in step after each `migrate` and by `manage.py sync_alert_webhook` (webhooks.operator).
PROMPTLEDGER_DRIFT_HOUR = env.int("PROMPTLEDGER_DRIFT_HOUR", 2, minimum=0, maximum=23)
PROMPTLEDGER_DRIFT_MAX_DROP = env.float("PROMPTLEDGER_DRIFT_MAX_DROP", 0.05, minimum=0, maximum=1)
PROMPTLEDGER_ALERT_WEBHOOK_URL = env.str("PROMPTLEDGER_ALERT_WEBHOOK_URL", "")
PROMPTLEDGER_ALERT_WEBHOOK_SECRET = env.str("PROMPTLEDGER_ALERT_WEBHOOK_SECRET", "")

# --- Webhooks -----------------------------------------------------------------------------------
# Each POST waits at most TIMEOUT seconds; a failed attempt n is retried after a random wait between
# half and all of min(BACKOFF_MAX, BACKOFF_BASE * 2**(n-1)) seconds, up to MAX_ATTEMPTS attempts.
PROMPTLEDGER_WEBHOOK_TIMEOUT = env.float("PROMPTLEDGER_WEBHOOK_TIMEOUT", 5, minimum=0.1)
PROMPTLEDGER_WEBHOOK_MAX_ATTEMPTS = env.int("PROMPTLEDGER_WEBHOOK_MAX_ATTEMPTS", 10, minimum=1)
PROMPTLEDGER_WEBHOOK_BACKOFF_BASE = env.float("PROMPTLEDGER_WEBHOOK_BACKOFF_BASE", 30, minimum=0)
PROMPTLEDGER_WEBHOOK_BACKOFF_MAX = env.float("PROMPTLEDGER_WEBHOOK_BACKOFF_MAX", 3600, minimum=0)
# Proxies whose X-Forwarded-For is believed (core.request_context): comma-separated CIDRs, none by
# default, so a client cannot choose the IP the audit trail records for it.
PROMPTLEDGER_TRUSTED_PROXIES = env.networks("PROMPTLEDGER_TRUSTED_PROXIES")
# The one limit on a request body, API and browser alike (config.middleware.RequestSizeMiddleware:
# 413 payload_too_large before any of it is read). Django's own limits follow it.
PROMPTLEDGER_MAX_REQUEST_BYTES = env.int("PROMPTLEDGER_MAX_REQUEST_BYTES", 5 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = PROMPTLEDGER_MAX_REQUEST_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = PROMPTLEDGER_MAX_REQUEST_BYTES
# Receivers on loopback, private, link-local or reserved addresses are refused (webhooks.destinations)
# unless inside one of these comma-separated CIDRs, e.g. "10.20.0.0/16,192.168.5.7/32".
# Fernet key(s) sealing webhook secrets at rest (webhooks.secret_box); the first seals, all unseal.
PROMPTLEDGER_SECRETS_KEY = env.str("PROMPTLEDGER_SECRETS_KEY", "")
PROMPTLEDGER_WEBHOOK_ALLOWED_NETWORKS = env.networks("PROMPTLEDGER_WEBHOOK_ALLOWED_NETWORKS")

# --- Celery -------------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # Its folders are made when a process starts (core.runtime_dirs), not on import.
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        # Broadcasts (a revoke when a run is cancelled) go here, not to ./control in the cwd.
        "control_folder": str(_broker_dir / "control"),
    }
else:
    # Retries and countdowns stay well under this: PostgreSQL, not the broker, holds the truth.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_BEAT_SCHEDULE = {
    "audit-checkpoint-heartbeat": {
        "task": "audit.tasks.write_checkpoint",
        "schedule": float(PROMPTLEDGER_AUDIT_CHECKPOINT_SECONDS),
    },
    "audit-verify-chain": {"task": "audit.tasks.verify_chain", "schedule": 900.0},
    "evals-reap-expired-leases": {"task": "evals.tasks.reap_expired_leases", "schedule": 15.0},
    "webhooks-requeue-due": {"task": "webhooks.tasks.requeue_due", "schedule": 60.0},
    "evals-drift-nightly": {
        "task": "evals.tasks.schedule_drift",
        "schedule": crontab(hour=PROMPTLEDGER_DRIFT_HOUR, minute=0),
    },
}

# --- Model risk register ------------------------------------------------------------------------
# Daily at PROMPTLEDGER_MODEL_REVIEW_HOUR (CELERY_TIMEZONE) every model whose quarterly review is
# due within PROMPTLEDGER_MODEL_REVIEW_NOTICE_DAYS days (or overdue) gets one model.review_due
# webhook event per due date (risk.services.notify_due_reviews); the risk list shows the same set.
PROMPTLEDGER_MODEL_REVIEW_NOTICE_DAYS = env.int("PROMPTLEDGER_MODEL_REVIEW_NOTICE_DAYS", 14, minimum=0)
PROMPTLEDGER_MODEL_REVIEW_HOUR = env.int("PROMPTLEDGER_MODEL_REVIEW_HOUR", 6, minimum=0, maximum=23)
CELERY_BEAT_SCHEDULE["risk-model-reviews-due"] = {
    "task": "risk.tasks.notify_due_reviews",
    "schedule": crontab(hour=PROMPTLEDGER_MODEL_REVIEW_HOUR, minute=15),
}
# --- Audit stream to a SIEM (webhooks.audit_stream; docs/siem.md) ---------------------------------
# Beat signals every due stream each TICK seconds; a stream's own interval (set on its page) spaces
# its batches once caught up. A POST waits at most TIMEOUT seconds per step; a failed batch is sent
# again after min(BACKOFF_MAX, BACKOFF_BASE * 2**(failures-1)) seconds, jittered, or the receiver's
# Retry-After when longer (never more than BACKOFF_MAX). Streams never give up or skip an event.
PROMPTLEDGER_AUDIT_STREAM_TICK = env.float("PROMPTLEDGER_AUDIT_STREAM_TICK", 5, minimum=1)
PROMPTLEDGER_AUDIT_STREAM_TIMEOUT = env.float("PROMPTLEDGER_AUDIT_STREAM_TIMEOUT", 10, minimum=0.1)
PROMPTLEDGER_AUDIT_STREAM_BACKOFF_BASE = env.float("PROMPTLEDGER_AUDIT_STREAM_BACKOFF_BASE", 2, minimum=0)
PROMPTLEDGER_AUDIT_STREAM_BACKOFF_MAX = env.float("PROMPTLEDGER_AUDIT_STREAM_BACKOFF_MAX", 300, minimum=0)
# How long a worker holds a stream (renewed before each batch); a dead worker's stream is sent by
# another once it runs out. 0: 4 x TIMEOUT + 30 s, longer than any one POST may take.
PROMPTLEDGER_AUDIT_STREAM_LEASE = env.float("PROMPTLEDGER_AUDIT_STREAM_LEASE", 0, minimum=0)
CELERY_BEAT_SCHEDULE["webhooks-audit-streams"] = {
    "task": "webhooks.tasks.audit_stream_tick",
    "schedule": PROMPTLEDGER_AUDIT_STREAM_TICK,
    # A tick no worker took in time is dropped: the next one does the same, so ticks never pile up
    # in the broker while the workers are down.
    "options": {"expires": 2 * PROMPTLEDGER_AUDIT_STREAM_TICK},
}
# The cache every process shares: API rate limits count there (core.throttling). Redis
# (PROMPTLEDGER_CACHE_URL, else the broker's Redis) in production; this process's memory otherwise.
PROMPTLEDGER_CACHE_URL = env.str("PROMPTLEDGER_CACHE_URL", "") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else ""
)
if PROMPTLEDGER_CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": PROMPTLEDGER_CACHE_URL, "KEY_PREFIX": "promptledger"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
PROMPTLEDGER_BAD_TOKEN_LIMIT = env.int("PROMPTLEDGER_BAD_TOKEN_LIMIT", 20, minimum=1)

# A claimed eval item's lease: its worker renews it every third of this while the run is in
# progress (a heartbeat), so only a lost worker's leases run out; beat's reaper (every 15 s) then
# gives its cases to another worker, within lease + 15 s of the loss. Well under the broker's
# visibility timeout. A case claimed PROMPTLEDGER_EVAL_MAX_CLAIMS times, losing its worker each
# time, gets an error result instead of another claim.
PROMPTLEDGER_EVAL_LEASE_SECONDS = env.int("PROMPTLEDGER_EVAL_LEASE_SECONDS", 30, minimum=1)
PROMPTLEDGER_EVAL_MAX_CLAIMS = env.int("PROMPTLEDGER_EVAL_MAX_CLAIMS", 3, minimum=1)
PROMPTLEDGER_EVAL_CONCURRENCY = env.int("PROMPTLEDGER_EVAL_CONCURRENCY", 32, minimum=1)
# Celery tasks (so worker processes) sharing one run, each with its share of the concurrency above.
PROMPTLEDGER_EVAL_TASKS_PER_RUN = env.int("PROMPTLEDGER_EVAL_TASKS_PER_RUN", 1, minimum=1)

# --- Metrics ------------------------------------------------------------------------------------
# Prometheus metrics at /metrics (config.metrics), every name prefixed promptledger_. Web and worker
# processes count into files in PROMETHEUS_MULTIPROC_DIR (default $PROMPTLEDGER_VAR_DIR/metrics),
# which /metrics adds up; each process cleans it at start when no process of this host is still
# writing there (core.metrics). PROMPTLEDGER_METRICS=false turns the counting and the route off.
# /metrics asks for `Authorization: Bearer $PROMPTLEDGER_METRICS_TOKEN` when that is set; without
# one it is open in development (the embedded mode) and closed (403) in production.
PROMPTLEDGER_METRICS = env.bool("PROMPTLEDGER_METRICS", True)
PROMPTLEDGER_METRICS_TOKEN = env.str("PROMPTLEDGER_METRICS_TOKEN", "")
PROMPTLEDGER_METRICS_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", "") or str(VAR_DIR / "metrics")
if PROMPTLEDGER_METRICS:
    # First, so a request's time includes every other middleware (and the HTTPS redirect is counted).
    MIDDLEWARE.insert(0, "config.middleware.RequestMetricsMiddleware")
# Prometheus scrapes the web process directly, inside the network, over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^metrics$"]

# --- Logging ------------------------------------------------------------------------------------
# Every process (web, worker, beat) logs to stderr in one format (core.logs), each line with the id
# of the request it was written in, or carried by the task. PROMPTLEDGER_LOG_FORMAT: json (one
# object a line, for a log collector; the default with DJANGO_ENV=production) or plain (text for a
# terminal; the default in the embedded mode). LOG_LEVEL: the least level written (a worker's or
# beat's --loglevel, which deploy/run.sh sets from it, decides for that process). One access line a
# request (logger promptledger.request) and one a task (promptledger.task), at INFO.
PROMPTLEDGER_LOG_FORMAT = env.choice("PROMPTLEDGER_LOG_FORMAT", "json" if PRODUCTION else "plain", ("json", "plain"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "core.logs.JsonFormatter"}, "plain": {"()": "core.logs.PlainFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": PROMPTLEDGER_LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own handlers (a debug-only console copy of each error, runserver's access line)
        # would say again, in another format, what the root handler and promptledger.request say.
        "django": {"handlers": [], "level": "INFO"}, "django.server": {"handlers": [], "level": "WARNING"},
        # httpx logs every provider request at INFO: thousands of lines per eval run, and real CPU.
        "django.db.backends": {"level": "WARNING"}, "httpx": {"level": "WARNING"},
        # Celery's "Task ... received/succeeded" lines: the promptledger.task line says it once (and
        # without the task's return value). Failures are still logged, with their traceback.
        "celery.app.trace": {"level": "WARNING"}, "celery.worker.strategy": {"level": "WARNING"},
    },
}

# --- Resolve cache (registry.resolve_cache, docs/resolve-cache.md) -------------------------------
# Each web process keeps token grants and deployment pointers in memory. On PostgreSQL a listener
# thread per process drops an entry when a change to it commits (triggers send pg_notify); an entry
# is also never older than PROMPTLEDGER_RESOLVE_CACHE_SECONDS, the bound should a notification be
# lost (30 s; 1 s in the embedded SQLite mode, which has no notifications; 0 turns the cache off).
# PROMPTLEDGER_RESOLVE_CACHE_LISTEN=false leaves the TTL alone as the bound (e.g. where LISTEN cannot
# work, behind a transaction-pooling PgBouncer).
PROMPTLEDGER_RESOLVE_CACHE_SECONDS = env.float(
    "PROMPTLEDGER_RESOLVE_CACHE_SECONDS",
    1.0 if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" else 30.0, minimum=0, maximum=300,
)
PROMPTLEDGER_RESOLVE_CACHE_LISTEN = env.bool("PROMPTLEDGER_RESOLVE_CACHE_LISTEN", True)

# --- Production hardening -----------------------------------------------------------------------
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", 8 * 3600, minimum=60)

# Last: one error naming every variable above that held a value it cannot use.
env.check()
