"""Signatures and re-authentication: how a person proved who they are for a decision. A
``Signature`` accepts only the known methods; ``needs_reauth`` says when a policy asks for the
password again, and ``signature_for`` reads the signature a call carries (a session that cannot say
when it signed in counts as long ago)."""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.utils import timezone


@dataclass(frozen=True)
class Signature:
    """How the person proved who they are for a decision: ``password`` (re-entered just now),
    ``session`` (their browser login at ``at``), ``api_token`` (the bearer token of the call) or
    ``bootstrap_demo`` (the demo's seeded decisions). Nothing else is accepted."""

    METHODS = ("password", "session", "api_token", "bootstrap_demo")

    method: str
    at: datetime

    def __post_init__(self):
        if self.method not in self.METHODS:
            raise ValueError(f"unknown signature method {self.method!r}; one of {', '.join(self.METHODS)}")


def needs_reauth(policy, signature):
    """Whether ``signature`` is too old to approve under ``policy``: a browser session older than
    ``PROMPTLEDGER_REAUTH_MAX_AGE`` where the policy asks for the password again."""
    if not policy.reauth_for_approval or signature.method != "session":
        return False
    return (timezone.now() - signature.at).total_seconds() > settings.PROMPTLEDGER_REAUTH_MAX_AGE


NEVER = datetime(1970, 1, 1, tzinfo=UTC)


def signature_for(actor):
    """The signature a call carries: its API token, or its browser session's last authentication
    (``core.session_auth``: this session's sign-in or password, not the person's newest
    sign-in anywhere). A session that cannot say when is treated as long ago."""
    if actor.token is not None:
        return Signature("api_token", timezone.now())
    return Signature("session", getattr(actor, "authenticated_at", None) or NEVER)
