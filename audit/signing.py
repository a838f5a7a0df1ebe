"""The Ed25519 key that signs checkpoints and export manifests. It is read from the environment
(``PROMPTLEDGER_AUDIT_SIGNING_KEY``, base64 of the 32-byte seed) or a file
(``PROMPTLEDGER_AUDIT_SIGNING_KEY_FILE``), never from the database. Outside production a missing
key file is created (mode 0600) so the embedded demo works.

The key is cached per source: for an environment value, until the process restarts (the
environment cannot change under it); for a file, until the file changes (its inode, size or
modification time), so a long-running worker signs with a rotated key from its next checkpoint
(``manage.py audit_rotate_key``, docs/audit-keys.md). A caller that writes a key id and a
signature together takes one ``current()`` key for both, so a rotation between the two can never
pair one key's id with another key's signature."""

import base64
import hashlib
import os
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def key_id_of(public_key):
    """The id of a raw 32-byte public key: the first 16 hex digits of its sha256 (``audit.verify``
    computes the same, standard library only)."""
    return hashlib.sha256(public_key).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKey:
    """One loaded private key with its public half and id."""

    private: Ed25519PrivateKey

    @cached_property
    def public_bytes(self):
        return self.private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def public_b64(self):
        return base64.b64encode(self.public_bytes).decode()

    @property
    def key_id(self):
        return key_id_of(self.public_bytes)

    def sign(self, payload):
        return base64.b64encode(self.private.sign(payload)).decode()


def from_env():
    """Whether the signing key is held in the environment (which this process cannot rotate)."""
    return bool(settings.PROMPTLEDGER_AUDIT_SIGNING_KEY)


def key_file():
    return Path(settings.PROMPTLEDGER_AUDIT_SIGNING_KEY_FILE)


def _source():
    """What identifies the key's current source: the environment value, or the file and its stat."""
    if from_env():
        return ("env", settings.PROMPTLEDGER_AUDIT_SIGNING_KEY)
    path = key_file()
    try:
        stat = path.stat()
    except FileNotFoundError:
        if settings.PRODUCTION:
            raise ImproperlyConfigured(
                "set PROMPTLEDGER_AUDIT_SIGNING_KEY or PROMPTLEDGER_AUDIT_SIGNING_KEY_FILE: checkpoints are signed "
                "with a key kept outside the database"
            ) from None
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(generate_seed_b64() + "\n")
        stat = path.stat()
    return ("file", str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=4)
def _load(source):
    if source[0] == "env":
        text, where = source[1], "PROMPTLEDGER_AUDIT_SIGNING_KEY"
    else:
        text, where = Path(source[1]).read_text(), source[1]
    try:
        seed = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        seed = b""
    if len(seed) != 32:
        raise ImproperlyConfigured(f"the audit signing key ({where}) must be 32 bytes, base64-encoded")
    return SigningKey(Ed25519PrivateKey.from_private_bytes(seed))


def current():
    """The signing key as it is now (re-read when its file changed)."""
    return _load(_source())


def private_key():
    return current().private


# Kept so tests and callers can drop every cached key at once.
private_key.cache_clear = _load.cache_clear


def public_key_bytes():
    return current().public_bytes


def public_key_b64():
    return current().public_b64


def key_id():
    return current().key_id


def sign(payload):
    return current().sign(payload)


def generate_seed_b64():
    return base64.b64encode(os.urandom(32)).decode()


def public_of_seed_b64(seed_b64):
    """``(key id, base64 public key)`` of a base64 seed: what a new key will be known by."""
    key = SigningKey(Ed25519PrivateKey.from_private_bytes(base64.b64decode(seed_b64)))
    return key.key_id, key.public_b64
