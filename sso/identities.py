"""Signing in with the IdP: the account behind an (issuer, subject), made on first sign-in, and
its roles set from the IdP's groups, all in one audited change.

Everything the IdP causes is done by the registry's own services (``create_user``,
``add_member``, ``remove_member``, ``grant_site_role``, ``revoke_site_role``) as the system actor
with request id ``oidc``, so the audit trail shows the same events as a manual change, made by
the IdP; ``sso.roles_synced`` then names the groups behind them. A refusal is recorded too
(``sso.sign_in_refused``) and raised as ``SignInRefused``.
"""

from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from audit.transactions import change, lock_rows, retry_transient
from core.actors import Actor
from core.errors import Conflict, DomainError
from registry import services as registry
from registry.models import Membership, SiteRole, Team

from . import events, provider
from .models import Identity
from .roles import group_map


class SignInRefused(DomainError):
    status = 403
    code = "sso_sign_in_refused"


def idp_actor(context=None):
    """The system acting for the IdP: audit events name actor ``system`` and request id ``oidc``."""
    context = context or {}
    return Actor(user=None, system=True, request_id="oidc", ip=context.get("ip", ""),
                 user_agent=context.get("user_agent", ""))


def is_idp_account(user):
    """Whether ``user`` signs in at the IdP (its account is linked to an IdP subject)."""
    return user is not None and Identity.objects.filter(user=user).exists()


def reauth_url(next_url):
    """Where a person goes to prove who they are at the IdP again (prompt=login, max_age=0)."""
    return reverse("oidc_authentication_init") + "?" + urlencode({"reauth": "1", "next": next_url})


def _epoch(value):
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=UTC)
    return None


def _username(claims):
    claim = settings.PROMPTLEDGER_OIDC_USERNAME_CLAIM
    value = claims.get(claim)
    if not isinstance(value, str) or not value.strip() or len(value) > 150:
        raise SignInRefused(f"the IdP sent no usable '{claim}' claim to name the account", code="no_username")
    return value.strip()


def groups_of(claims):
    value = claims.get(settings.PROMPTLEDGER_OIDC_GROUPS_CLAIM, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    return sorted({g for g in value if isinstance(g, str) and g})


def sign_in(*, claims, context=None):
    """The active account for verified ID-token (and userinfo) ``claims``, its identity and roles
    brought up to date; ``SignInRefused`` (recorded) when it may not sign in. Two first sign-ins
    of one subject at once (two tabs) meet at the identity's unique constraint: the loser runs
    again and finds the winner's account."""
    try:
        return _sign_in(claims=claims, context=context)
    except (IntegrityError, Conflict):
        return _sign_in(claims=claims, context=context)


@retry_transient
def _sign_in(*, claims, context=None):
    actor = idp_actor(context)
    subject = claims.get("sub")
    username = claims.get(settings.PROMPTLEDGER_OIDC_USERNAME_CLAIM)
    try:
        if not isinstance(subject, str) or not subject:
            raise SignInRefused("the ID token has no subject", code="no_subject")
        with change():
            identity = lock_rows(Identity.objects).select_related("user").filter(
                issuer=provider.issuer(), subject=subject
            ).first()
            if identity is None:
                identity = _link(actor, subject, _username(claims), claims)
            if not identity.user.is_active:
                raise SignInRefused(f"the account '{identity.user.username}' is deactivated", code="account_inactive")
            groups = groups_of(claims)
            changes = _apply_roles(actor, identity.user, groups)
            identity.groups = groups
            identity.last_seen_at = timezone.now()
            identity.last_auth_time = _epoch(claims.get("auth_time"))
            identity.save(update_fields=["groups", "last_seen_at", "last_auth_time"])
            if changes:
                events.roles_synced(actor, identity, groups=groups, changes=changes)
        return identity.user
    except SignInRefused as exc:
        with change():
            events.sign_in_refused(actor, issuer=provider.issuer(), subject=str(subject or ""),
                                   username=str(username or "")[:150], reason=exc.code)
        raise


def _link(actor, subject, username, claims):
    user = get_user_model().objects.filter(username=username).first()
    created = user is None
    if user is None:
        email = claims.get("email") if isinstance(claims.get("email"), str) else ""
        user = registry.create_user(actor=actor, username=username, email=email[:254])
    elif not settings.PROMPTLEDGER_OIDC_LINK_BY_USERNAME or Identity.objects.filter(user=user).exists():
        raise SignInRefused(
            f"the username '{username}' belongs to a local account; an admin must link it "
            "(PROMPTLEDGER_OIDC_LINK_BY_USERNAME) or rename it", code="username_taken",
        )
    identity = Identity.objects.create(
        user=user, issuer=provider.issuer(), subject=subject, last_seen_at=timezone.now()
    )
    events.identity_linked(actor, identity, created_account=created)
    return identity


def _apply_roles(actor, user, groups):
    """Give ``user`` exactly the roles ``groups`` grant in the teams and site roles the map
    manages, through the registry's audited services; the changes made, as a list."""
    mapping = group_map()
    teams, site_roles = mapping.granted(groups)
    changes = []
    existing = {slug: team for slug, team in ((t.slug, t) for t in Team.objects.filter(slug__in=mapping.managed_teams))}
    current = dict(Membership.objects.filter(user=user, team__slug__in=existing).values_list("team__slug", "role"))
    for slug, team in sorted(existing.items()):
        wanted, have = teams.get(slug), current.get(slug)
        if wanted == have:
            continue
        if wanted is None:
            registry.remove_member(actor=actor, team=team, username=user.username)
        else:
            registry.add_member(actor=actor, team=team, username=user.username, role=wanted)
        changes.append({"team": slug, "before": have, "after": wanted})
    held = set(SiteRole.objects.filter(user=user, role__in=mapping.managed_site_roles).values_list("role", flat=True))
    for role in sorted(mapping.managed_site_roles):
        if role in site_roles and role not in held:
            registry.grant_site_role(actor=actor, username=user.username, role=role)
            changes.append({"site_role": role, "before": False, "after": True})
        elif role in held and role not in site_roles:
            registry.revoke_site_role(actor=actor, username=user.username, role=role)
            changes.append({"site_role": role, "before": True, "after": False})
    return changes
