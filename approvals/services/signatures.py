"""Signatures and re-authentication: how a person proved who they are for a decision. A
``Signature`` accepts only the known methods; ``needs_reauth`` says when a policy asks for the
password (or, for an SSO account, the identity provider) again, and ``signature_for`` reads the
signature a call carries (a session that cannot say when it signed in counts as long ago).

An SSO sign-in records in the session when and how the IdP authenticated the person
(``remember_idp_authentication``: its ``auth_time`` and ``amr``); the browser signs with that
(method ``idp``), and the policy's maximum age applies to the IdP's ``auth_time``."""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.utils import timezone


@dataclass(frozen=True)
class Signature:
    """How the person proved who they are for a decision: ``password`` (re-entered just now),
    ``session`` (their browser login at ``at``), ``idp`` (the identity provider authenticated them
    at ``at``, by the methods ``amr``), ``api_token`` (the bearer token of the call) or
    ``bootstrap_demo`` (the demo's seeded decisions). Nothing else is accepted."""

    METHODS = ("password", "session", "idp", "api_token", "bootstrap_demo")

    method: str
    at: datetime
    amr: tuple = ()

    def __post_init__(self):
        if self.method not in self.METHODS:
            raise ValueError(f"unknown signature method {self.method!r}; one of {', '.join(self.METHODS)}")


def needs_reauth(policy, signature):
    """Whether ``signature`` is too old to approve under ``policy``, where the policy asks for the
    password again: a browser session (or IdP sign-in) older than ``PROMPTLEDGER_REAUTH_MAX_AGE``,
    or a password typed for an earlier signature longer ago than ``PROMPTLEDGER_SIGNATURE_WINDOW``."""
    if not policy.reauth_for_approval or signature.method not in ("session", "idp", "password"):
        return False
    limit = settings.PROMPTLEDGER_SIGNATURE_WINDOW if signature.method == "password" else (
        settings.PROMPTLEDGER_REAUTH_MAX_AGE
    )
    return (timezone.now() - signature.at).total_seconds() > limit


NEVER = datetime(1970, 1, 1, tzinfo=UTC)


def signature_for(actor):
    """The signature a call carries: its API token, or its browser session's last authentication
    (``core.session_auth``: this session's sign-in or password, not the person's newest
    sign-in anywhere). A session that cannot say when is treated as long ago."""
    if actor.token is not None:
        return Signature("api_token", timezone.now())
    return Signature("session", getattr(actor, "authenticated_at", None) or NEVER)


IDP_SESSION_KEY = "promptledger.idp_authentication"


def remember_idp_authentication(session, *, at, amr):
    """Keep in ``session`` when (``auth_time``, None when the IdP did not say) and how (``amr``)
    the identity provider last authenticated its person."""
    session[IDP_SESSION_KEY] = {"auth_time": at.isoformat() if at else None, "amr": [str(m) for m in amr][:10]}


def idp_signature(session):
    """The signature of a session signed in at the IdP (its ``auth_time`` and ``amr``), or None for
    a session that was not; an IdP that named no ``auth_time`` counts as long ago."""
    value = session.get(IDP_SESSION_KEY) if session is not None else None
    if not isinstance(value, dict):
        return None
    try:
        at = datetime.fromisoformat(value["auth_time"]) if value.get("auth_time") else NEVER
    except (TypeError, ValueError):
        at = NEVER
    return Signature("idp", at, tuple(value.get("amr") or ()))


def token_cannot_sign(policy, user):
    """Whether an API token cannot sign this decision: the policy asks for re-authentication and
    the person signs in at an identity provider, which alone can vouch for them again (their
    token's use says nothing of who holds it now). Local accounts' tokens sign as before."""
    from registry import hooks

    idp_account = hooks.provided("idp_account")
    return bool(policy.reauth_for_approval and idp_account is not None and idp_account(user))
