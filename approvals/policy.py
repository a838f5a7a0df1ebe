"""Tier policies and who counts as an approver.

The defaults are DESIGN.md's: Tier-0 needs two approvals from the prompt's named approvers, a
passing gate and an approved model, and asks for the password again when approving in the
browser; Tier-1 one approval by a team approver and a passing gate; Tier-2 a passing gate;
Tier-3 nothing (it deploys as it is requested, audited). A ``restricted`` model may carry tiers 2
and 3; a ``retired`` one carries nothing.
"""

from collections import defaultdict
from dataclasses import dataclass

from registry.models import LLMModel, Membership, Prompt

from .models import NamedApprover, TierPolicy

DEFAULTS = {
    0: {
        "required_approvals": 2,
        "named_approvers_only": True,
        "requires_gate": True,
        "allowed_model_statuses": [LLMModel.APPROVED],
        "reauth_for_approval": True,
    },
    1: {
        "required_approvals": 1,
        "named_approvers_only": False,
        "requires_gate": True,
        "allowed_model_statuses": [LLMModel.APPROVED],
        "reauth_for_approval": False,
    },
    2: {
        "required_approvals": 0,
        "named_approvers_only": False,
        "requires_gate": True,
        "allowed_model_statuses": [LLMModel.APPROVED, LLMModel.RESTRICTED],
        "reauth_for_approval": False,
    },
    3: {
        "required_approvals": 0,
        "named_approvers_only": False,
        "requires_gate": False,
        "allowed_model_statuses": [LLMModel.APPROVED, LLMModel.RESTRICTED],
        "reauth_for_approval": False,
    },
}
MODEL_STATUSES = [LLMModel.APPROVED, LLMModel.RESTRICTED]  # a retired model is never allowed


def policy_for(tier):
    """The tier's policy in force: its row (a migration seeds all four), or the defaults, unsaved,
    if the row is missing. Reading never writes; only ``administration.update_policy`` does."""
    policy = TierPolicy.objects.select_related("updated_by").filter(tier=tier).first()
    return policy if policy is not None else TierPolicy(tier=tier, **DEFAULTS[tier])


def policies():
    """The four tiers' policies in force, in tier order."""
    rows = {p.tier: p for p in TierPolicy.objects.select_related("updated_by")}
    return [rows.get(tier) or TierPolicy(tier=tier, **DEFAULTS[tier]) for tier in DEFAULTS]


def model_key(version):
    return f"{version.llm_model.provider}:{version.llm_model.model_id}" if version is not None else ""


def named_approvers_by_prompt(prompt_ids):
    """``{prompt id: user ids}`` named on each prompt directly or through one of its approver
    groups, for any number of prompts in one query."""
    named = defaultdict(set)
    rows = NamedApprover.objects.filter(prompt_id__in=prompt_ids).values_list("prompt_id", "user_id", "group__members")
    for prompt_id, user_id, member_id in rows:
        named[prompt_id].update(uid for uid in (user_id, member_id) if uid is not None)
    return named


def named_approver_ids(prompt):
    """User ids named on the prompt directly or through one of its approver groups."""
    return named_approvers_by_prompt([prompt.pk])[prompt.pk]


def team_approvers_by_team(team_ids):
    """``{team id: user ids}`` of the active members holding the approver or owner role in each
    team, for any number of teams in one query."""
    approvers = defaultdict(set)
    rows = Membership.objects.filter(
        team_id__in=team_ids, user__is_active=True, role__in=[Membership.APPROVER, Membership.OWNER]
    ).values_list("team_id", "user_id")
    for team_id, user_id in rows:
        approvers[team_id].add(user_id)
    return approvers


def team_approver_ids(team):
    """Active members holding the approver or owner role in ``team``."""
    return team_approvers_by_team([team.pk])[team.pk]


def _eligible(team_approvers, named, policy):
    """The rule itself: team approvers and owners, and under a named-approvers policy only those of
    them named on the prompt."""
    return set(team_approvers) & set(named) if policy.named_approvers_only else set(team_approvers)


def eligible_approver_ids(prompt, policy):
    """Who may decide on this prompt's requests under ``policy``: team approvers and owners, and
    under a named-approvers policy only those of them named on the prompt (still members, active)."""
    return _eligible(team_approver_ids(prompt.team), named_approver_ids(prompt), policy)


@dataclass(frozen=True)
class Eligibility:
    """Who may approve the requests of one team's prompts of one tier: ``prompt`` is None when the
    tier's policy does not ask for named approvers (then the same people may approve every prompt of
    that tier in the team, today's and tomorrow's), else the one prompt they are named on."""

    team_id: int
    tier: int
    prompt_id: int | None
    user_ids: frozenset
    named_approvers_only: bool


def approval_eligibility(team_ids):
    """Standing approval rights, for the access review: for each team and each tier whose policy
    asks for approvals, who is eligible, by ``eligible_approver_ids``'s rule (the one a decision is
    checked against), in a fixed number of queries. A request's own author and requester are
    refused on top of this when they decide (``requirements.refusal_to_decide``)."""
    in_force = {policy.tier: policy for policy in policies()}
    team_approvers = team_approvers_by_team(team_ids)
    named_tiers = [t for t, policy in in_force.items() if policy.required_approvals and policy.named_approvers_only]
    prompts = list(
        Prompt.objects.filter(team_id__in=team_ids, tier__in=named_tiers)
        .order_by("slug").values_list("pk", "team_id", "tier")
    )
    named = named_approvers_by_prompt([pk for pk, _, _ in prompts])
    rows = []
    for team_id in team_ids:
        for tier, policy in sorted(in_force.items()):
            if not policy.required_approvals:
                continue  # nobody approves: the tier deploys on its gate alone
            if not policy.named_approvers_only:
                users = _eligible(team_approvers[team_id], (), policy)
                rows.append(Eligibility(team_id, tier, None, frozenset(users), False))
                continue
            for pk, prompt_team, prompt_tier in prompts:
                if prompt_team == team_id and prompt_tier == tier:
                    users = _eligible(team_approvers[team_id], named[pk], policy)
                    rows.append(Eligibility(team_id, tier, pk, frozenset(users), True))
    return rows
