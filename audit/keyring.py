"""The keys that verify the audit trail: the current signing key and the retired public keys.

Retired keys live OUTSIDE the database, so someone who can write the database cannot add a key of
their own and re-sign the chain with it: ``PROMPTLEDGER_AUDIT_RETIRED_KEYS`` (a comma list of
base64 Ed25519 public keys) and the file ``PROMPTLEDGER_AUDIT_RETIRED_KEYS_FILE`` (one base64 public
key a line; ``#`` starts a comment). Both are read afresh on every use, so a verifier never trusts a
stale list. A checkpoint names its key by id (``signing.key_id_of``); docs/audit-keys.md has the
rotation procedure.
"""

import base64
import binascii
import os
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from . import signing


@dataclass(frozen=True)
class PublicKey:
    key_id: str
    public_b64: str
    source: str  # where it is listed: "current", the setting's name, or "FILE line N"

    @property
    def raw(self):
        return base64.b64decode(self.public_b64)


@dataclass
class KeyRing:
    """The current key, the retired ones (in the order listed, no duplicates), and what was wrong
    with the lists (an unreadable file, a malformed entry): a verification with problems here
    cannot be sure it knows every key, so it fails."""

    current: PublicKey
    retired: list = field(default_factory=list)
    problems: list = field(default_factory=list)

    def trusted(self):
        """``{key id: raw public key}`` of every key that verifies."""
        keys = {key.key_id: key.raw for key in self.retired}
        keys[self.current.key_id] = self.current.raw
        return keys

    def public_b64(self, key_id):
        for key in (self.current, *self.retired):
            if key.key_id == key_id:
                return key.public_b64
        return None


def parse_public_key(text):
    """The raw 32 bytes of a base64 Ed25519 public key, or None when ``text`` is not one."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def retired_file():
    value = settings.PROMPTLEDGER_AUDIT_RETIRED_KEYS_FILE
    return Path(value) if value else None


def retired_entries():
    """``(text, source)`` of every retired-key entry, and the problems met reading them."""
    entries, problems = [], []
    for number, text in enumerate(settings.PROMPTLEDGER_AUDIT_RETIRED_KEYS, start=1):
        entries.append((text, f"PROMPTLEDGER_AUDIT_RETIRED_KEYS entry {number}"))
    path = retired_file()
    if path is not None:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            lines = []
        except (OSError, UnicodeDecodeError) as exc:
            lines = []
            problems.append(f"the retired audit keys file {path} cannot be read: {exc}")
        for number, line in enumerate(lines, start=1):
            text = line.split("#", 1)[0].strip()
            if text:
                entries.append((text, f"{path} line {number}"))
    return entries, problems


def load():
    """The key ring as configured now."""
    key = signing.current()
    ring = KeyRing(current=PublicKey(key.key_id, key.public_b64, "current"))
    entries, ring.problems = retired_entries()
    seen = set()
    for text, source in entries:
        raw = parse_public_key(text)
        if raw is None:
            ring.problems.append(
                f"{source} is not a base64 Ed25519 public key (32 bytes): retired keys are public keys, "
                "as `manage.py audit_public_key` prints them"
            )
            continue
        key = PublicKey(signing.key_id_of(raw), base64.b64encode(raw).decode(), source)
        if key.key_id not in seen and key.key_id != ring.current.key_id:
            seen.add(key.key_id)
            ring.retired.append(key)
    return ring


def unknown_key_hint():
    where = [f"the retired keys file {retired_file()}"] if retired_file() is not None else []
    return " or ".join([*where, "PROMPTLEDGER_AUDIT_RETIRED_KEYS"])


def append_retired(public_b64, *, note):
    """Add a public key to the retired keys file (created 0600 when missing), flushed to disk,
    unless it is listed there already. ``note`` goes on a comment line above it."""
    path = retired_file()
    if path is None:
        raise ValueError("PROMPTLEDGER_AUDIT_RETIRED_KEYS_FILE is empty: there is no file to list the old key in")
    raw = parse_public_key(public_b64)
    if raw is None:
        raise ValueError("not a base64 Ed25519 public key")
    try:
        listed = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        listed = ""
    if any(parse_public_key(line.split("#", 1)[0]) == raw for line in listed.splitlines()):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        prefix = "" if not listed or listed.endswith("\n") else "\n"
        handle.write(f"{prefix}# {note}\n{public_b64}\n")
        handle.flush()
        os.fsync(handle.fileno())
    return path
