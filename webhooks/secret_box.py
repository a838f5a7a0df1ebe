"""Webhook secrets at rest: sealed with Fernet (AES-128-CBC and HMAC-SHA256, from ``cryptography``)
under ``PROMPTLEDGER_SECRETS_KEY``, so a copy of the database or a backup does not hand out the
keys that sign Promptledger's webhooks. Deliveries unseal a secret for the moment they sign.

``PROMPTLEDGER_SECRETS_KEY`` is one or more Fernet keys, comma-separated: the first seals, every one
unseals, so a key is rotated by putting the new one first (``manage.py seal_webhook_secrets``
re-seals every row under it). Without it, a key is derived from ``SECRET_KEY`` (development; the
deploy check asks for a key of its own in production). A value without the ``fernet:`` prefix is a
secret stored before sealing and is read as it is until re-sealed.
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

PREFIX = "fernet:"


def _fernet():
    keys = [k.strip() for k in (settings.PROMPTLEDGER_SECRETS_KEY or "").split(",") if k.strip()]
    if not keys:
        derived = hashlib.sha256(b"promptledger webhook secrets\x00" + settings.SECRET_KEY.encode()).digest()
        keys = [base64.urlsafe_b64encode(derived).decode()]
    return MultiFernet([Fernet(key) for key in keys])


def seal(raw):
    return PREFIX + _fernet().encrypt(raw.encode("utf-8")).decode("ascii")


def unseal(stored):
    if not stored.startswith(PREFIX):
        return stored
    try:
        return _fernet().decrypt(stored[len(PREFIX):].encode("ascii")).decode("utf-8")
    except InvalidToken as exc:
        raise RuntimeError("a webhook secret cannot be unsealed with PROMPTLEDGER_SECRETS_KEY (was the key "
                           "changed without keeping the old one after it?)") from exc


def reseal(stored):
    """``stored`` sealed under the first key (from plaintext or any older key)."""
    return seal(unseal(stored))
