"""Scoped API tokens: who may hold which scope, who may issue and revoke (the ``token.issue`` and
``token.revoke`` rows of ``core.access``, plus the rules for tokens that mint tokens), and which
tokens an actor sees. The secret is returned once and only its sha256 is stored. The API and the
pages ask the predicates here (``may_issue_token``, ``may_revoke_token``), so each rule is written
once."""

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from audit import events
from audit.transactions import change, retry_transient
from core import access
from core.auth import hash_token
from core.errors import NotFound, PermissionDenied, ValidationFailed

from ..models import APIToken, Membership, SiteRole
from .validation import check_text

TOKEN_PREFIX = "pl_"  # noqa: S105 - a public prefix, not a secret
DEFAULT_DAYS = 90
ACTIVE, EXPIRED, REVOKED = "active", "expired", "revoked"


def max_days():
    """The operator's ceiling on a token's lifetime, ``PROMPTLEDGER_TOKEN_MAX_DAYS``."""
    return settings.PROMPTLEDGER_TOKEN_MAX_DAYS


def default_days():
    return min(DEFAULT_DAYS, max_days())


def grantable_scopes(user):
    """The scopes ``user``'s roles allow a token of theirs to carry, in ``APIToken.SCOPES`` order.

    A scope is grantable when some action it unlocks is one the person could take today:
    - ``prompts:read`` and ``audit:read``: anyone active (reading is everyone's in the access table;
      visibility filters what each read shows: a member sees their teams' prompts and events,
      compliance every event);
    - ``prompts:write``: author or above in some team (versions, prompts; owners administer their
      team with it), or the risk site role (the model register);
    - ``evals:run`` and ``deploy``: author or above in some team (authors start runs, open and
      deploy requests; approvers approve them and flip kill switches);
    - admins (and superusers), every scope.
    An inactive user holds nothing. The roles are still checked on every use, so a token whose
    person later loses a role loses what the role gave at once. ``issue_token`` holds people and
    admins to this; the operator's command line (the system) is not held to it.
    """
    if user is None or not user.is_active:
        return []
    site = set(SiteRole.objects.filter(user=user).values_list("role", flat=True))
    if user.is_superuser or SiteRole.ADMIN in site:
        return list(APIToken.SCOPES)
    ranks = [Membership.RANK[role] for role in Membership.objects.filter(user=user).values_list("role", flat=True)]
    allowed = {"prompts:read", "audit:read"}
    if ranks and max(ranks) >= Membership.RANK[Membership.AUTHOR]:
        allowed |= {"prompts:write", "evals:run", "deploy"}
    if SiteRole.RISK in site:
        allowed.add("prompts:write")
    return [scope for scope in APIToken.SCOPES if scope in allowed]


def _own(actor, user_id):
    return actor.user is not None and actor.user.pk == user_id


def may_issue_token(actor, user):
    """Tokens are minted from a signed-in browser session (people for themselves, admins for
    anyone), by the operator's ``manage.py issue_token`` (the system), or with an admin's token (for
    provisioning). Nobody else's token mints tokens, and a token never outgrows the one that minted
    it (``_check_scopes``, ``_check_expiry``): a leaked token can neither widen its scopes nor outlive
    its own expiry through a successor."""
    try:
        _require_issuer(actor, user)
    except PermissionDenied:
        return False
    return True


def _require_issuer(actor, user):
    access.require(actor, "token.issue", own=_own(actor, user.pk))
    if actor.token is not None and not actor.is_admin:
        raise PermissionDenied(
            "tokens are issued from a signed-in session; of bearer tokens only an admin's may issue one",
            code="token_cannot_issue",
        )


def may_see_token(actor, token):
    return actor.is_admin or _own(actor, token.user_id)


def may_revoke_token(actor, token):
    """People revoke their own tokens (a token may revoke itself or its siblings); admins anyone's."""
    return access.may(actor, "token.revoke", own=_own(actor, token.user_id))


def token_state(token, now=None):
    if token.revoked_at is not None:
        return REVOKED
    if token.expires_at is not None and token.expires_at <= (now or timezone.now()):
        return EXPIRED
    return ACTIVE


def visible_tokens(actor, *, username=None):
    """The actor's own tokens; every token for admins (``username`` narrows to one person's)."""
    access.require(actor, "read")
    queryset = APIToken.objects.select_related("user").order_by("-created_at", "-pk")
    if not actor.is_admin:
        if actor.user is None:
            return queryset.none()
        queryset = queryset.filter(user=actor.user)
    if username:
        queryset = queryset.filter(user__username=username)
    return queryset


def get_visible_token(actor, token_id):
    """One token the actor may see; someone else's is not found, so its existence is not told."""
    token = visible_tokens(actor).filter(pk=token_id).first() if str(token_id).isdigit() else None
    if token is None:
        raise NotFound(f"no token {token_id}", code="not_found")
    return token


def _check_scopes(actor, user, scopes):
    if not isinstance(scopes, list | tuple) or not all(isinstance(s, str) for s in scopes):
        raise ValidationFailed("scopes must be a list", code="invalid_scope",
                               field_errors={"scopes": ["a list of scope names"]})
    scopes = sorted(set(scopes))
    bad = [s for s in scopes if s not in APIToken.SCOPES]
    if not scopes or bad:
        problem = f"unknown: {', '.join(bad)}; allowed" if bad else "choose at least one of"
        raise ValidationFailed(
            "invalid scopes" if bad else "a token needs at least one scope",
            code="invalid_scope",
            field_errors={"scopes": [f"{problem}: {', '.join(APIToken.SCOPES)}"]},
        )
    if actor.system:  # the operator's command line; the roles still decide on every use
        return scopes
    grantable = grantable_scopes(user)
    beyond = [s for s in scopes if s not in grantable]
    if beyond:
        who = user.get_username()
        raise ValidationFailed(
            f"the scope {', '.join(beyond)} is beyond what {who}'s roles allow",
            code="scope_not_allowed",
            field_errors={
                "scopes": [f"not allowed for {who}: {', '.join(beyond)}; allowed: {', '.join(grantable) or 'none'}"]
            },
        )
    if actor.token is not None:
        beyond = [s for s in scopes if s not in (actor.token.scopes or [])]
        if beyond:
            raise ValidationFailed(
                f"the scope {', '.join(beyond)} is beyond the token issuing this one",
                code="scope_not_allowed",
                field_errors={"scopes": [f"not on the issuing token: {', '.join(beyond)}"]},
            )
    return scopes


def _check_expiry(actor, expires_at, now):
    latest = now + timedelta(days=max_days())
    minting = actor.token.expires_at if actor.token is not None else None
    if expires_at is None:
        default = now + timedelta(days=default_days())
        return min(default, minting) if minting else default
    if isinstance(expires_at, datetime) and timezone.is_naive(expires_at):
        expires_at = timezone.make_aware(expires_at, timezone.get_current_timezone())
    if minting and minting < latest:
        latest = minting
        allowed = f"after now and no later than the token issuing it ({latest:%Y-%m-%d %H:%M} UTC)"
    else:
        allowed = f"after now and at most {max_days()} days ahead (by {latest:%Y-%m-%d %H:%M} UTC)"
    if not isinstance(expires_at, datetime) or not now < expires_at <= latest:
        raise ValidationFailed(
            f"expires_at must be {allowed}",
            code="invalid_expiry",
            field_errors={"expires_at": [allowed]},
        )
    return expires_at


@retry_transient
def issue_token(*, actor, user, scopes, name="", expires_at=None):
    """Issue a token for ``user`` with ``scopes`` (at most ``grantable_scopes(user)``) expiring at
    ``expires_at`` (default ``DEFAULT_DAYS`` from now, never beyond ``max_days()``). Through an
    admin's token, the new one has at most that token's scopes and expires no later than it.

    Returns ``(token, raw_secret)``; the raw secret is not kept anywhere.
    """
    _require_issuer(actor, user)
    if not user.is_active:
        raise ValidationFailed(f"'{user.get_username()}' is not active", field_errors={"user": ["inactive user"]})
    name = check_text(name, "name", required=False, max_length=100)
    scopes = _check_scopes(actor, user, scopes)
    expires_at = _check_expiry(actor, expires_at, timezone.now())
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with change():
        token = APIToken.objects.create(
            user=user, name=name, prefix=raw[:10], key_hash=hash_token(raw), scopes=scopes, expires_at=expires_at
        )
        events.token_issued(actor, token)
    return token, raw


@retry_transient
def revoke_token(*, actor, token):
    """Revoke ``token`` (a second revoke changes nothing and records nothing). Someone else's token
    is not found unless the actor is an admin, so revoking does not tell whether it exists."""
    if not may_see_token(actor, token):
        raise NotFound(f"no token {token.pk}", code="not_found")
    access.require(actor, "token.revoke", own=_own(actor, token.user_id))
    with change():
        revoked = APIToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        token.refresh_from_db()
        if revoked:
            events.token_revoked(actor, token)
    return token
