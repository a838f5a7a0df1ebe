"""What the register adds to every deploy's checklist (``approvals.requirements.checklist`` asks
through ``registry.hooks.provided("deploy_requirements")``, inside the deploy's transaction, so the
API, the browser and the CLI all meet it):

- ``model_review``: the model's quarterly review is not overdue. Per tier (``RiskPolicy``), an
  overdue review refuses the deploy with ``model_review_overdue`` (tiers 0 and 1 by default) or only
  warns (tiers 2 and 3): the item is then met and its detail carries the warning, which the request
  page shows and the deploy's audit event keeps.
- ``model_tiers``: a model restricted to some tiers by a review carries only those
  (``model_restricted``)."""

from approvals.requirements import Requirement
from registry.models import LLMModel

from . import policy
from .models import ModelProfile, RiskPolicy


def _review(entry, tier):
    today = policy.today()
    due = entry.next_review_due
    label = "The model's quarterly review is not overdue"
    if due is None or due >= today:
        detail = f"next review due {due.isoformat()}" if due else "no review scheduled"
        return Requirement("model_review", label, True, detail, "model_review_overdue")
    days = (today - due).days
    late = f"{entry}'s review is {days} day{'s' if days != 1 else ''} overdue (it was due {due.isoformat()})"
    if policy.overdue_rule(tier) == RiskPolicy.REFUSE:
        return Requirement(
            "model_review", label, False,
            f"{late}; tier-{tier} deploys are refused until the model is reviewed", "model_review_overdue",
        )
    return Requirement(
        "model_review", label, True, f"Warning: {late}; tier {tier} only warns", "model_review_overdue"
    )


def _tiers(entry, tier):
    if entry.status != LLMModel.RESTRICTED:
        return None
    allowed = ModelProfile.objects.filter(llm_model=entry).values_list("allowed_tiers", flat=True).first() or []
    if not allowed:
        return None
    met = tier in allowed
    detail = f"{entry} is restricted to tier{'s' if len(allowed) > 1 else ''} {', '.join(map(str, allowed))}"
    return Requirement("model_tiers", "The model's review allows this tier", met, detail, "model_restricted")


def requirements(request, tier_policy):
    """The register's requirements of ``request`` (a deploy request putting a version live)."""
    entry, tier = request.version.llm_model, int(request.prompt.tier)
    return [item for item in (_review(entry, tier), _tiers(entry, tier)) if item is not None]
