"""Scoped API tokens: the secret is returned once and only its sha256 is stored."""

import hashlib
import secrets

from django.utils import timezone

from audit import events
from audit.transactions import change, retry_transient

from ..errors import PermissionDenied, ValidationFailed
from ..models import APIToken

TOKEN_PREFIX = "pl_"  # noqa: S105 - a public prefix, not a secret


def hash_token(raw):
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


@retry_transient
def issue_token(*, actor, user, scopes, name="", expires_at=None):
    """Issue a token for ``user``; users issue their own, admins and the system anyone's.

    Returns ``(token, raw_secret)``; the raw secret is not kept anywhere.
    """
    if not (actor.is_admin or (actor.user is not None and actor.user.pk == user.pk and actor.token is None)):
        raise PermissionDenied("you may only issue tokens for yourself", code="forbidden")
    if not user.is_active:
        raise ValidationFailed(f"'{user.get_username()}' is not active", field_errors={"user": ["inactive user"]})
    scopes = sorted(set(scopes or []))
    bad = [s for s in scopes if s not in APIToken.SCOPES]
    if not scopes or bad:
        raise ValidationFailed(
            "invalid scopes",
            code="invalid_scope",
            field_errors={
                "scope": [f"unknown: {', '.join(bad) or 'none given'}; allowed: {', '.join(APIToken.SCOPES)}"]
            },
        )
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with change():
        token = APIToken.objects.create(
            user=user, name=name[:100], prefix=raw[:10], key_hash=hash_token(raw), scopes=scopes, expires_at=expires_at
        )
        events.token_issued(actor, token)
    return token, raw


@retry_transient
def revoke_token(*, actor, token):
    if not (actor.is_admin or (actor.user is not None and actor.user.pk == token.user_id)):
        raise PermissionDenied("you may only revoke your own tokens")
    with change():
        revoked = APIToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        token.refresh_from_db()
        if revoked:
            events.token_revoked(actor, token)
    return token
