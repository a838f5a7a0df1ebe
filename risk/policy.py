"""When a model's review is due or overdue, and what each tier does about an overdue one.

A review is *overdue* the day after its ``next_review_due`` and *due* from
``PROMPTLEDGER_MODEL_REVIEW_NOTICE_DAYS`` days before it. Per tier, ``RiskPolicy`` says whether a
deploy on a model with an overdue review is refused (``model_review_overdue``) or only warned
about; a migration seeds the defaults, and a missing row reads as its default."""

import datetime

from django.conf import settings
from django.utils import timezone

from core.tiers import TIERS

from .models import RiskPolicy

DEFAULT_OVERDUE = {0: RiskPolicy.REFUSE, 1: RiskPolicy.REFUSE, 2: RiskPolicy.WARN, 3: RiskPolicy.WARN}
OVERDUE, DUE, SCHEDULED, UNSCHEDULED = "overdue", "due", "scheduled", "unscheduled"


def today():
    return timezone.localdate()


def due_horizon(on=None):
    """The last day whose reviews count as due on ``on`` (today by default)."""
    return (on or today()) + datetime.timedelta(days=settings.PROMPTLEDGER_MODEL_REVIEW_NOTICE_DAYS)


def review_state(entry, on=None):
    """``overdue``, ``due`` (within the notice days), ``scheduled`` or ``unscheduled`` (no date)."""
    on = on or today()
    due = entry.next_review_due
    if due is None:
        return UNSCHEDULED
    if due < on:
        return OVERDUE
    return DUE if due <= due_horizon(on) else SCHEDULED


def overdue_rule(tier):
    """``refuse`` or ``warn``: what a deploy of a tier-``tier`` prompt meets on an overdue model."""
    rule = RiskPolicy.objects.filter(tier=tier).values_list("overdue_review", flat=True).first()
    return rule or DEFAULT_OVERDUE[int(tier)]


def risk_policies():
    """Every tier's rule in force, in tier order (unsaved defaults where a row is missing)."""
    rows = {p.tier: p for p in RiskPolicy.objects.select_related("updated_by")}
    return [rows.get(int(t)) or RiskPolicy(tier=int(t), overdue_review=DEFAULT_OVERDUE[int(t)]) for t in TIERS]
