"""The demo's model register documents and reviews (``world.yaml``'s ``model_register``), written
through ``risk.services`` by the ``risk`` user once the story is loaded: a deploy the story makes is
never held back by a review the demo puts overdue. Idempotent: a model that has a document keeps it
(and its dates), and one that has a review is not reviewed again."""

import datetime

from django.contrib.auth import get_user_model
from django.utils import timezone

from approvals.services import Signature
from core.actors import Actor
from evals.models import Suite
from registry import services as registry
from registry.models import LLMModel
from risk import services as risk
from risk.models import ModelProfile, ModelReview


def load(world, created):
    """Write each model's document and review; ``created["model reviews"]`` counts the reviews."""
    reviewer = get_user_model().objects.get(username="risk")
    actor = Actor(user=reviewer, authenticated_at=timezone.now())
    today = timezone.localdate()
    for model_id, spec in (world.get("model_register") or {}).items():
        entry = LLMModel.objects.filter(model_id=model_id).first()
        if entry is None:
            continue
        fresh = not ModelProfile.objects.filter(llm_model=entry).exists()  # first load of its document
        if fresh:
            suites = list(Suite.objects.filter(slug__in=spec.get("suites", [])).values_list("slug", flat=True))
            risk.edit_model(actor=actor, llm_model=entry, intended_use=spec.get("intended_use", ""),
                            limitations=spec.get("limitations", ""), suites=suites)
        review = spec.get("review")
        if review and not ModelReview.objects.filter(llm_model=entry).exists():
            risk.record_review(
                actor=actor, llm_model=entry, findings=review["findings"], decision=review["decision"],
                allowed_tiers=review.get("allowed_tiers", []), evidence_links=review.get("evidence_links", []),
                next_review_due=today + datetime.timedelta(days=review["next_due_days"]),
                signature=Signature("bootstrap_demo", timezone.now()),
            )
            created["model reviews"] = created.get("model reviews", 0) + 1
        elif fresh and "reviewed_days_ago" in spec:  # its review falls due 91 days after: overdue
            reviewed = today - datetime.timedelta(days=spec["reviewed_days_ago"])
            registry.update_llm_model(actor=actor, llm_model=entry, last_reviewed_at=reviewed)
