"""The restore drill of docs/operations.md, performed: an audit trail built through the services,
``pg_dump -Fc`` of the database, ``pg_restore`` into a new database, the checkpoint sink and the
signing key copied as an operator would, and ``manage.py verify_audit`` pointed at the copy.

The newest dump verifies and names its range. An older dump restored beside the newer sink (events
and checkpoints lost since that dump) fails, naming the sink's checkpoint the database lacks."""

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from audit import signing
from audit.models import AuditCheckpoint, AuditEvent
from audit.services import write_checkpoint
from core.actors import Actor
from registry.models import Team
from registry.services import add_member, create_team, issue_token
from tests.conftest import need_service

ROOT = Path(settings.BASE_DIR)
pytestmark = pytest.mark.django_db(transaction=True)


def _client_env(db):
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = db["PASSWORD"]
    return env


def _conn_args(db):
    return ["-h", db.get("HOST") or "127.0.0.1", "-p", str(db.get("PORT") or 5432), "-U", db.get("USER") or "postgres"]


def _url(db, name):
    auth = db.get("USER") or "postgres"
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    return f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{name}"


@pytest.fixture
def pg_tools(postgres):
    for tool in ("pg_dump", "pg_restore"):
        need_service(tool, shutil.which(tool), "install PostgreSQL's client programs (Debian: postgresql-client)")
    return connection.settings_dict


@pytest.fixture
def scratch_databases(pg_tools):
    """``make()`` names a new, empty database on the test server; every one is dropped at the end."""
    db, made = pg_tools, []

    def admin():
        return psycopg.connect(_url(db, "postgres"), autocommit=True, connect_timeout=10)

    def make():
        name = f"{db['NAME']}_restore_{uuid.uuid4().hex[:8]}"
        with admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return name

    yield make
    with admin() as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def operator_files(settings, tmp_path):
    """The signing key in a file and the sink in a folder, as the production host keeps them."""
    keys = tmp_path / "prod" / "keys"
    keys.mkdir(parents=True)
    key = keys / "audit-signing.key"
    key.write_text(signing.generate_seed_b64() + "\n")
    key.chmod(0o600)
    sink = tmp_path / "prod" / "audit-sink"
    sink.mkdir()
    settings.PROMPTLEDGER_AUDIT_SIGNING_KEY = ""
    settings.PROMPTLEDGER_AUDIT_SIGNING_KEY_FILE = str(key)
    settings.PROMPTLEDGER_AUDIT_SINK = str(sink)  # a folder: checkpoints.jsonl is appended there
    signing.private_key.cache_clear()
    return {"key": key, "sink": sink / "checkpoints.jsonl"}


def dump(path):
    db = connection.settings_dict
    done = subprocess.run(["pg_dump", "-Fc", *_conn_args(db), "-f", str(path), db["NAME"]],
                          env=_client_env(db), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return path


def restore(path, database):
    db = connection.settings_dict
    done = subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", *_conn_args(db), "-d", database, str(path)],
                          env=_client_env(db), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def copy_operator_files(files, host):
    """What the operator brings to the restore host beside the dump: the sink and the key(s)."""
    host.mkdir()
    shutil.copy2(files["sink"], host / "checkpoints.jsonl")
    shutil.copy2(files["key"], host / "audit-signing.key")
    retired = Path(getattr(settings, "PROMPTLEDGER_AUDIT_RETIRED_KEYS_FILE", "") or host / "none")
    if retired.exists():  # public keys of rotated-out signing keys (docs/audit-keys.md)
        shutil.copy2(retired, host / "audit-retired-keys")
    return host


def verify_audit(database, host):
    env = {
        **os.environ,
        "DATABASE_URL": _url(connection.settings_dict, database),
        "PROMPTLEDGER_AUDIT_SIGNING_KEY": "",
        "PROMPTLEDGER_AUDIT_SIGNING_KEY_FILE": str(host / "audit-signing.key"),
        "PROMPTLEDGER_AUDIT_RETIRED_KEYS_FILE": str(host / "audit-retired-keys"),
        "PROMPTLEDGER_AUDIT_SINK": str(host / "checkpoints.jsonl"),
        "PROMPTLEDGER_VAR_DIR": str(host / "var"),
    }
    env.pop("DJANGO_ENV", None)
    return subprocess.run([sys.executable, "manage.py", "verify_audit"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def some_work(cast, suffix):
    """State changes through the services, each appending its audit event."""
    system = Actor.for_system()
    team = create_team(actor=system, slug=f"drill-{suffix}", name=f"Drill {suffix}")
    add_member(actor=system, team=team, username=cast["author"].username, role="author")
    issue_token(actor=system, user=cast["author"], scopes=["prompts:read"], name=f"drill {suffix}")
    return team


def test_a_restored_dump_verifies_and_an_older_one_beside_a_newer_sink_fails(
    cast, version, operator_files, scratch_databases, tmp_path
):
    some_work(cast, "one")
    write_checkpoint()
    older_dump = dump(tmp_path / "older.dump")
    older_events = AuditEvent.objects.count()

    some_work(cast, "two")
    write_checkpoint()
    newest = AuditEvent.objects.order_by("-sequence").first()
    newest_dump = dump(tmp_path / "newest.dump")
    assert Team.objects.filter(slug="drill-two").exists() and newest.sequence > older_events > 3
    assert len(operator_files["sink"].read_text().splitlines()) == AuditCheckpoint.objects.count() == 2

    # The drill: the newest dump in a new database, with the sink and the key beside it.
    restored = scratch_databases()
    restore(newest_dump, restored)
    done = verify_audit(restored, copy_operator_files(operator_files, tmp_path / "restore-host"))
    assert done.returncode == 0, done.stdout + done.stderr
    first = AuditEvent.objects.order_by("sequence").first().sequence
    assert f"OK: events {first}..{newest.sequence}" in done.stdout, done.stdout
    assert f"signed up to event {newest.sequence}" in done.stdout, done.stdout

    # An older dump: its database lacks the newest events and the checkpoint the sink kept of them.
    stale = scratch_databases()
    restore(older_dump, stale)
    done = verify_audit(stale, copy_operator_files(operator_files, tmp_path / "restore-host-older"))
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(rf"BROKEN at event {newest.sequence}: sink: .*checkpoint the database lacks", done.stdout), \
        done.stdout
