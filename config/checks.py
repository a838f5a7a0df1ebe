"""The production essentials, checked by ``manage.py check``: the audit signing key is readable,
the checkpoint sink is appendable, and the database and the broker answer.

They run under ``check --deploy`` (any environment) and on every check when ``DJANGO_ENV=production``;
otherwise (``runserver``, the test suite) they cost nothing. The database and broker probes are
``/healthz``'s own (``config.health``), each given at most ``PROBE_SECONDS`` in a thread of its own,
so ``check`` on a dead or black-holed broker says so in seconds instead of hanging. Registered by
``config.apps``. A command that must run while the broker is down (``verify_audit`` on a restore
host, say) takes ``--skip-checks``.
"""

import os
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.db import connection

from audit import signing

from .health import _check_broker, _check_database

PROBE_SECONDS = 3.0


def _probe_within(probe, seconds=PROBE_SECONDS):
    """Run ``probe`` in a daemon thread; return None when it answered in time, else what went wrong.
    A probe still waiting when the time is up is left behind (a daemon thread, its socket closes with
    the process): ``check`` is a short-lived command."""
    outcome = {}

    def run():
        try:
            probe()
        except Exception as exc:  # noqa: BLE001 - any failure is the answer, reported by the caller
            outcome["error"] = f"{type(exc).__name__}: {str(exc).strip()[:300]}"
        else:
            outcome["ok"] = True
        finally:
            connection.close()  # this thread's own database connection, if the probe opened one

    started = time.monotonic()
    thread = threading.Thread(target=run, name=f"check-{probe.__name__}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        return f"no answer within {seconds:g} s"
    if "ok" in outcome:
        return None
    return outcome.get("error", f"failed after {time.monotonic() - started:.1f} s")


def _without_password(url):
    """A URL fit for a message: the password (if any) replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _database_target():
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"SQLite file {db['NAME']}"
    return f"{db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}/{db['NAME']}"


def _may_exist(path):
    """False only when ``path`` is certainly not there; a folder this user cannot search says nothing."""
    try:
        return path.exists()
    except OSError:
        return True


def signing_key_readable():
    """E010: the key that signs checkpoints loads. Not configured at all in production is E001's
    (``audit.checks_deploy``); outside production a missing key file is made on first use."""
    key_file = Path(settings.PROMPTLEDGER_AUDIT_SIGNING_KEY_FILE)
    if not settings.PROMPTLEDGER_AUDIT_SIGNING_KEY and not _may_exist(key_file):
        return []
    getattr(signing.private_key, "cache_clear", lambda: None)()  # read it now, as a starting process would
    try:
        signing.private_key()
    except Exception as exc:  # noqa: BLE001 - whatever stops the key loading is the finding
        return [Error(
            f"the audit signing key cannot be read: {type(exc).__name__}: {str(exc)[:300]}",
            hint="PROMPTLEDGER_AUDIT_SIGNING_KEY must be the base64 of a 32-byte Ed25519 seed, or "
                 "PROMPTLEDGER_AUDIT_SIGNING_KEY_FILE a file this user can read holding one "
                 "(`manage.py audit_public_key --generate-private` prints a new seed)",
            id="promptledger.E010",
        )]
    return []


def sink_appendable():
    """E011: checkpoints can be appended to the sink outside the database. Proved by opening the sink
    file for appending (made empty if it is not there yet, as the first checkpoint would), which an
    append-only (write-once) file allows; nothing is written."""
    sink = settings.PROMPTLEDGER_AUDIT_SINK
    hint = ("PROMPTLEDGER_AUDIT_SINK must name a file this user can append to, or a directory it can write "
            "(checkpoints.jsonl is appended there); keep it outside PostgreSQL's storage")
    if not sink:
        return [Error("no audit checkpoint sink: checkpoints are kept only in the database, so deleting the "
                      "newest events and checkpoints there goes unnoticed", hint=hint, id="promptledger.E011")]
    target = os.path.join(sink, "checkpoints.jsonl") if os.path.isdir(sink) else sink
    try:
        with open(target, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        return [Error(f"the audit checkpoint sink {target} cannot be appended to: {exc.strerror or exc}",
                      hint=hint, id="promptledger.E011")]
    return []


def database_reachable():
    """E012: the database answers ``SELECT 1`` within ``PROBE_SECONDS``."""
    problem = _probe_within(_check_database)
    if problem is None:
        return []
    return [Error(
        f"the database ({_database_target()}) is unreachable: {problem}",
        hint="set DATABASE_URL (postgres://USER:PASSWORD@HOST:5432/NAME) to a PostgreSQL server this host "
             "can reach and log in to; `pg_isready -d \"$DATABASE_URL\"` tests the same",
        id="promptledger.E012",
    )]


def broker_reachable():
    """E013: the Celery broker accepts a connection within ``PROBE_SECONDS``."""
    problem = _probe_within(_check_broker)
    if problem is None:
        return []
    return [Error(
        f"the Celery broker ({_without_password(settings.CELERY_BROKER_URL)}) is unreachable: {problem}",
        hint="set CELERY_BROKER_URL (redis://HOST:6379/0) to a Redis server this host can reach; "
             "`redis-cli -u \"$CELERY_BROKER_URL\" ping` tests the same",
        id="promptledger.E013",
    )]


ESSENTIALS = (signing_key_readable, sink_appendable, database_reachable, broker_reachable)


def _essentials():
    return [message for check in ESSENTIALS for message in check()]


@register(Tags.security, Tags.database)
def production_essentials(app_configs, **kwargs):
    """Every ``check`` (so ``migrate`` too) in production."""
    return _essentials() if settings.PRODUCTION else []


@register(Tags.security, Tags.database, deploy=True)
def deploy_essentials(app_configs, **kwargs):
    """``check --deploy`` anywhere else (in production ``production_essentials`` already ran)."""
    return [] if settings.PRODUCTION else _essentials()
