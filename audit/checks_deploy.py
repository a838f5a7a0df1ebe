"""``check --deploy``: production must sign audit checkpoints with a key kept outside the database."""

from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Tags, register


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
