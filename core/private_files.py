"""The embedded mode's database is its owner's alone: each time a connection opens the SQLite file,
the file and its ``-wal`` and ``-shm`` are set to mode 0600 and ``PROMPTLEDGER_VAR_DIR`` (which also
holds the audit signing key and the broker's messages) to 0700. A database made before this rule,
copied in, or created under a loose umask is tightened the next time any process opens it; the
directory is 0700 from the start (``core.runtime_dirs`` makes it so when a process starts), so the
file is never readable by others in the moment between SQLite creating it and this receiver running.

Files and directories owned by another user are left alone (a chmod would fail); PostgreSQL
connections are not concerned."""

import os
import stat
from pathlib import Path

from django.conf import settings
from django.db.backends.signals import connection_created

OWNER_ONLY_FILE = 0o600
OWNER_ONLY_DIRECTORY = 0o700


def restrict(path, mode):
    """Set ``path`` to ``mode`` when it exists, is ours and is not so already."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return
    if found.st_uid == os.geteuid() and stat.S_IMODE(found.st_mode) != mode:
        os.chmod(path, mode)


def database_file(settings_dict):
    """The path of a SQLite database, or None for one held in memory."""
    name = str(settings_dict.get("NAME") or "")
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name)


def make_database_private(sender, connection, **kwargs):
    if connection.vendor != "sqlite":
        return
    restrict(settings.VAR_DIR, OWNER_ONLY_DIRECTORY)
    path = database_file(connection.settings_dict)
    if path is None:
        return
    for name in (path, f"{path}-wal", f"{path}-shm"):
        restrict(name, OWNER_ONLY_FILE)


connection_created.connect(make_database_private, dispatch_uid="promptledger.private_sqlite_files")
