"""Tier policies and who counts as an approver.

The defaults are DESIGN.md's: Tier-0 needs two approvals from the prompt's named approvers, a
passing gate and an approved model, and asks for the password again when approving in the
browser; Tier-1 one approval by a team approver and a passing gate; Tier-2 a passing gate;
Tier-3 nothing (it deploys as it is requested, audited). A ``restricted`` model may carry tiers 2
and 3; a ``retired`` one carries nothing.
"""

from registry.models import LLMModel, Membership

from .models import ApproverGroup, NamedApprover, TierPolicy

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
    """The tier's policy row, created with the defaults if an operator removed it."""
    policy, _ = TierPolicy.objects.get_or_create(tier=tier, defaults=DEFAULTS[tier])
    return policy


def model_key(version):
    return f"{version.llm_model.provider}:{version.llm_model.model_id}" if version is not None else ""


def named_approver_ids(prompt):
    """User ids named on the prompt directly or through one of its approver groups."""
    direct = NamedApprover.objects.filter(prompt=prompt, user__isnull=False).values_list("user_id", flat=True)
    groups = NamedApprover.objects.filter(prompt=prompt, group__isnull=False).values_list("group_id", flat=True)
    via_groups = ApproverGroup.members.through.objects.filter(approvergroup_id__in=groups).values_list(
        "user_id", flat=True
    )
    return set(direct) | set(via_groups)


def team_approver_ids(team):
    """Active members holding the approver or owner role in ``team``."""
    return set(
        Membership.objects.filter(
            team=team, user__is_active=True, role__in=[Membership.APPROVER, Membership.OWNER]
        ).values_list("user_id", flat=True)
    )


def eligible_approver_ids(prompt, policy):
    """Who may decide on this prompt's requests under ``policy``: team approvers and owners, and
    under a named-approvers policy only those of them named on the prompt (still members, active)."""
    approvers = team_approver_ids(prompt.team)
    if policy.named_approvers_only:
        approvers &= named_approver_ids(prompt)
    return approvers
