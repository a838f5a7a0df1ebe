"""The Ed25519 key that signs checkpoints and export manifests. It is read from the environment
(``PROMPTLEDGER_AUDIT_SIGNING_KEY``, base64 of the 32-byte seed) or a file
(``PROMPTLEDGER_AUDIT_SIGNING_KEY_FILE``), never from the database. Outside production a missing
key file is created (mode 0600) so the embedded demo works."""

import base64
import hashlib
import os
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _seed():
    if settings.PROMPTLEDGER_AUDIT_SIGNING_KEY:
        return base64.b64decode(settings.PROMPTLEDGER_AUDIT_SIGNING_KEY)
    path = Path(settings.PROMPTLEDGER_AUDIT_SIGNING_KEY_FILE)
    if not path.exists():
        if settings.PRODUCTION:
            raise ImproperlyConfigured(
                "set PROMPTLEDGER_AUDIT_SIGNING_KEY or PROMPTLEDGER_AUDIT_SIGNING_KEY_FILE: checkpoints are signed "
                "with a key kept outside the database"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        seed = os.urandom(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.b64encode(seed).decode() + "\n")
        return seed
    return base64.b64decode(path.read_text().strip())


@lru_cache(maxsize=1)
def private_key():
    seed = _seed()
    if len(seed) != 32:
        raise ImproperlyConfigured("the audit signing key must be 32 bytes, base64-encoded")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_bytes():
    return private_key().public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_b64():
    return base64.b64encode(public_key_bytes()).decode()


def key_id():
    return hashlib.sha256(public_key_bytes()).hexdigest()[:16]


def sign(payload):
    return base64.b64encode(private_key().sign(payload)).decode()


def generate_seed_b64():
    return base64.b64encode(os.urandom(32)).decode()
