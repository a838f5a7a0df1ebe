"""Signing in the browser, one rule for every page that signs (a deploy decision in approvals, a
model review in risk): what the form must ask for, and the signature the answer gives.

A session signed in at the identity provider signs by signing in there again (its IdP
``auth_time``), never with a local password; a password session signs with the password typed
now, or with its last authentication when that is recent enough. A password typed to sign keeps
signing this session's further decisions for ``PROMPTLEDGER_SIGNATURE_WINDOW`` seconds: they are
recorded as what they are, the password signature given at the time it was typed (method
``password``, that time), not as a fresher sign-in. The service checks the signature's age
(``signatures.needs_reauth``) whatever the page asked."""

from datetime import datetime

from django.utils import timezone

from core.errors import PermissionDenied
from registry import hooks

from .services.signatures import Signature, idp_signature, needs_reauth, signature_for

SIGNED_AT_KEY = "promptledger.password_signed_at"


def _password_signature(session):
    """The password signature this session gave last (when the password was typed), or None."""
    value = session.get(SIGNED_AT_KEY) if session is not None else None
    try:
        return Signature("password", datetime.fromisoformat(value)) if value else None
    except (TypeError, ValueError):
        return None


def current_signature(session, actor):
    """The signature the session carries now, without asking anything: the IdP's sign-in for an
    SSO session; otherwise the newer of the session's sign-in and the password it last signed with."""
    idp = idp_signature(session) if session is not None else None
    if idp is not None:
        return idp
    signed_in = signature_for(actor)
    typed = _password_signature(session)
    if signed_in.method == "session" and typed is not None and typed.at >= signed_in.at:
        return typed
    return signed_in


def needs_password(session, actor, policy):
    """Whether the form must ask for the password (or send an SSO session to the IdP)."""
    if actor.user is None:
        return False
    return needs_reauth(policy, current_signature(session, actor))


def idp_reauth_url(session, back_to):
    """Where an SSO session signs again at the IdP before coming back to ``back_to``, or ""."""
    reauth_url = hooks.provided("idp_reauth_url")
    if reauth_url is None or session is None or idp_signature(session) is None:
        return ""
    return reauth_url(back_to)


def signature(session, actor, password, *, what):
    """The signature of a browser form: the password typed now (remembered in the session for
    ``PROMPTLEDGER_SIGNATURE_WINDOW``), or the session's own. ``what`` names what is signed in the
    refusal ("the decision", "the review")."""
    idp = idp_signature(session)
    if password and idp is not None:
        raise PermissionDenied(f"sign in again at the identity provider to sign {what}", code="reauth_required")
    if password:
        if not actor.user.check_password(password):
            raise PermissionDenied(f"that password is not right; {what} was not recorded", code="reauth_failed")
        now = timezone.now()
        session[SIGNED_AT_KEY] = now.isoformat()
        return Signature("password", now)
    return current_signature(session, actor)
