"""Who approves and what each tier demands: a prompt's named approvers, a team's approver groups
and the tier policies. Each function checks permission, writes and records its audit event in
one transaction."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug

from audit.transactions import change, lock_rows, retry_transient
from core import access
from core.errors import ValidationFailed
from core.tiers import TIERS
from registry.services.validation import check_text

from . import events
from .models import ApproverGroup, NamedApprover, TierPolicy
from .policy import DEFAULTS, MODEL_STATUSES, team_approver_ids


def approvers_of(prompt):
    """``{"approvers": [usernames], "approver_groups": [slugs]}`` as named on the prompt."""
    rows = NamedApprover.objects.filter(prompt=prompt).select_related("user", "group")
    return {
        "approvers": sorted(r.user.get_username() for r in rows if r.user_id),
        "approver_groups": sorted(r.group.slug for r in rows if r.group_id),
    }


def _team_users(team, usernames, field):
    if not isinstance(usernames, list) or not all(isinstance(u, str) for u in usernames):
        raise ValidationFailed(f"{field} is a list of usernames", field_errors={field: ["a list of usernames"]})
    users = {u.get_username(): u for u in get_user_model().objects.filter(username__in=usernames)}
    eligible = team_approver_ids(team)
    problems = [
        f"'{name}' is not an active approver or owner of team '{team.slug}'"
        for name in usernames
        if name not in users or users[name].pk not in eligible
    ]
    if problems:
        raise ValidationFailed(
            "only the team's approvers and owners can be approvers", code="not_eligible_approver",
            field_errors={field: problems},
        )
    return [users[name] for name in dict.fromkeys(usernames)]


@retry_transient
def set_named_approvers(*, actor, prompt, approvers=None, approver_groups=None):
    """Replace the prompt's named approvers (usernames) and/or approver groups (slugs of its
    team's groups); owners of its team. Named users must be its active approvers or owners."""
    access.require(actor, "approvers.set", team=prompt.team)
    users = _team_users(prompt.team, approvers, "approvers") if approvers is not None else None
    groups = None
    if approver_groups is not None:
        if not isinstance(approver_groups, list) or not all(isinstance(g, str) for g in approver_groups):
            raise ValidationFailed("approver_groups is a list of slugs", field_errors={"approver_groups": ["a list"]})
        found = {g.slug: g for g in ApproverGroup.objects.filter(team=prompt.team, slug__in=approver_groups)}
        missing = [slug for slug in approver_groups if slug not in found]
        if missing:
            raise ValidationFailed(
                "unknown approver group", code="unknown_approver_group",
                field_errors={"approver_groups": [f"team '{prompt.team.slug}' has no group '{m}'" for m in missing]},
            )
        groups = [found[slug] for slug in dict.fromkeys(approver_groups)]
    with change():
        before = approvers_of(prompt)
        if users is not None:
            NamedApprover.objects.filter(prompt=prompt, user__isnull=False).delete()
            NamedApprover.objects.bulk_create([NamedApprover(prompt=prompt, user=u) for u in users])
        if groups is not None:
            NamedApprover.objects.filter(prompt=prompt, group__isnull=False).delete()
            NamedApprover.objects.bulk_create([NamedApprover(prompt=prompt, group=g) for g in groups])
        after = approvers_of(prompt)
        if after != before:
            events.approvers_changed(actor, prompt, before=before, after=after)
    return after


@retry_transient
def save_approver_group(*, actor, team, slug, name, members):
    """Create or replace a team's approver group; owners of the team. Members must be the team's
    active approvers or owners."""
    access.require(actor, "approver_group.save", team=team)
    try:
        validate_slug(slug or "")
    except ValidationError:
        raise ValidationFailed("slug is not a slug", field_errors={"slug": ["letters, digits, - and _"]}) from None
    name = check_text(name, "name")
    users = _team_users(team, members, "members")
    with change():
        group, created = lock_rows(ApproverGroup.objects).get_or_create(
            team=team, slug=slug, defaults={"name": name}
        )
        before = None if created else {"name": group.name, "members": events._members(group)}
        group.name = name
        group.save()
        group.members.set(users)
        events.approver_group_changed(actor, group, before=before, created=created)
    return group


EDITABLE = {
    "required_approvals": int,
    "named_approvers_only": bool,
    "requires_gate": bool,
    "allowed_model_statuses": list,
    "reauth_for_approval": bool,
}


@retry_transient
def update_policy(*, actor, tier, reason=None, **changes):
    """Edit a tier's policy; site admins only, saying why (``reason``, kept in the audit event).
    Its version goes up, so approvals given under the old policy no longer count; requests keep
    the snapshot they were opened under."""
    access.require(actor, "policy.update")
    reason = check_text(reason, "reason", max_length=2000)
    if isinstance(tier, bool) or tier not in TIERS:
        raise ValidationFailed(f"no tier {tier!r}", field_errors={"tier": ["0, 1, 2 or 3"]})
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValidationFailed(
            "these fields cannot be changed", field_errors={k: ["read-only or unknown"] for k in sorted(unknown)}
        )
    for field, kind in EDITABLE.items():
        value = changes.get(field)
        if field in changes and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            raise ValidationFailed(f"{field} has the wrong type", field_errors={field: [f"expected {kind.__name__}"]})
    if "required_approvals" in changes and not 0 <= changes["required_approvals"] <= 10:
        raise ValidationFailed("required_approvals is out of range", field_errors={"required_approvals": ["0 to 10"]})
    if "allowed_model_statuses" in changes:
        statuses = changes["allowed_model_statuses"]
        if not statuses or any(s not in MODEL_STATUSES for s in statuses):
            raise ValidationFailed(
                "allowed_model_statuses lists register statuses", code="invalid_model_statuses",
                field_errors={"allowed_model_statuses": [f"one or more of {', '.join(MODEL_STATUSES)}"]},
            )
    with change():
        TierPolicy.objects.get_or_create(tier=tier, defaults=DEFAULTS[tier])  # a removed row comes back here
        policy = lock_rows(TierPolicy.objects).get(tier=tier)
        before = policy.snapshot()
        for field, value in changes.items():
            setattr(policy, field, value)
        if policy.snapshot() | {"version": before["version"]} == before:
            return policy
        policy.version += 1
        policy.updated_by = actor.user
        policy.save()
        events.policy_updated(actor, policy, before=before, reason=reason)
    return policy
