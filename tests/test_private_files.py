"""The embedded mode's SQLite database is readable by its owner only: opening it (whatever made it,
under whatever umask) leaves the file and its -wal and -shm at 0600, and the var directory at 0700."""

import os
import stat
import subprocess
import sys

from django.conf import settings
from django.db.utils import ConnectionHandler


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def open_sqlite(path):
    """A Django connection to the SQLite file ``path``, with the embedded mode's options (WAL)."""
    handler = ConnectionHandler({"default": {
        "ENGINE": "django.db.backends.sqlite3", "NAME": str(path),
        "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE"},
    }})
    connection = handler["default"]
    connection.ensure_connection()
    return connection


def test_opening_a_loose_database_makes_it_and_its_wal_files_owner_only(settings, tmp_path, django_db_blocker):
    settings.VAR_DIR = var = tmp_path / "var"
    var.mkdir(mode=0o755)
    var.chmod(0o755)
    path = var / "promptledger.sqlite3"
    old_umask = os.umask(0o022)
    try:
        import sqlite3

        made = sqlite3.connect(path)  # made elsewhere, under a loose umask, and still open: WAL files exist
        made.execute("PRAGMA journal_mode=WAL")
        made.execute("CREATE TABLE note (text TEXT)")
        made.execute("INSERT INTO note VALUES ('kept')")
        made.commit()
        assert mode(path) == 0o644 and mode(f"{path}-wal") == 0o644 and mode(f"{path}-shm") == 0o644

        with django_db_blocker.unblock():  # a database of its own, not the tests' one
            connection = open_sqlite(path)
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT text FROM note")
                    assert cursor.fetchone() == ("kept",)
                assert mode(var) == 0o700
                assert {name: mode(var / name) for name in os.listdir(var)} == {
                    "promptledger.sqlite3": 0o600, "promptledger.sqlite3-wal": 0o600,
                    "promptledger.sqlite3-shm": 0o600,
                }
            finally:
                connection.close()
                made.close()
    finally:
        os.umask(old_umask)


def test_the_embedded_mode_creates_its_database_owner_only_under_a_loose_umask(tmp_path):
    """A fresh PROMPTLEDGER_VAR_DIR: settings make the directory, the first connection the file."""
    var = tmp_path / "fresh-var"
    script = (
        "import os; os.umask(0o022)\n"
        "import django; django.setup()\n"
        "from django.db import connection\n"
        "with connection.cursor() as cursor:\n"
        "    cursor.execute('CREATE TABLE note (text TEXT)')\n"
        "print(connection.vendor, connection.settings_dict['NAME'])\n"
    )
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(PROMPTLEDGER_VAR_DIR=str(var), DJANGO_SETTINGS_MODULE="config.settings")
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=settings.BASE_DIR, capture_output=True, text=True,
        timeout=60, check=True,
    )
    assert done.stdout.split() == ["sqlite", str(var / "promptledger.sqlite3")], done.stderr
    assert mode(var) == 0o700
    assert mode(var / "promptledger.sqlite3") == 0o600
    assert all(mode(var / name) == 0o600 for name in os.listdir(var) if name.startswith("promptledger.sqlite3"))
