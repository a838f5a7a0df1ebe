"""``check --deploy``: production must sign audit checkpoints with a key kept outside the database,
and the retired keys that verify older checkpoints must be readable and well formed."""

from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Tags, register

from .keyring import parse_public_key, retired_entries


@register(Tags.security, deploy=True)
def audit_signing_key_configured(app_configs, **kwargs):
    if not settings.PRODUCTION:
        return []
    if settings.PROMPTLEDGER_AUDIT_SIGNING_KEY or Path(settings.PROMPTLEDGER_AUDIT_SIGNING_KEY_FILE).exists():
        return []
    return [
        Error(
            "no audit signing key: set PROMPTLEDGER_AUDIT_SIGNING_KEY (base64 seed; "
            "`manage.py audit_public_key --generate-private` makes one) or PROMPTLEDGER_AUDIT_SIGNING_KEY_FILE",
            id="promptledger.E001",
        )
    ]


@register(Tags.security, deploy=True)
def webhook_secrets_key_configured(app_configs, **kwargs):
    if not settings.PRODUCTION or settings.PROMPTLEDGER_SECRETS_KEY:
        return []
    from django.core.checks import Warning as CheckWarning

    return [
        CheckWarning(
            "webhook secrets are sealed with a key derived from SECRET_KEY: set PROMPTLEDGER_SECRETS_KEY "
            "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'), so "
            "changing SECRET_KEY does not make them unreadable",
            id="promptledger.W002",
        )
    ]


@register(Tags.security, deploy=True)
def audit_retired_keys_readable(app_configs, **kwargs):
    """W021: a retired-keys file that cannot be read, or an entry that is not a public key, leaves
    the checkpoints of that key unverifiable (``verify_audit`` fails). Checked in every mode: a
    broken list is as wrong in a demo as in production."""
    from django.core.checks import Warning as CheckWarning

    entries, problems = retired_entries()
    problems += [
        f"{source} is not a base64 Ed25519 public key (32 bytes)" for text, source in entries
        if parse_public_key(text) is None
    ]
    return [
        CheckWarning(
            f"retired audit signing keys: {problem}",
            hint="list one base64 public key a line, as `manage.py audit_public_key` prints them "
            "(docs/audit-keys.md); checkpoints signed by a key missing here fail verify_audit",
            id="promptledger.W021",
        )
        for problem in problems
    ]
