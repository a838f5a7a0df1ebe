"""What the risk workspace adds to a register entry (``registry.models.LLMModel``): its profile
(intended use, limitations, linked suites, the tiers a restricted model may carry), its signed
reviews, the per-tier rule for overdue reviews, and the reminders already sent."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from approvals.models import signature_words
from core.tiers import TIERS
from evals.models import Suite
from registry.models import ImmutableRowError, LLMModel


class ModelProfile(models.Model):
    """The parts of a model's two-page document that the register entry itself does not hold."""

    llm_model = models.OneToOneField(LLMModel, primary_key=True, on_delete=models.PROTECT, related_name="risk_profile")
    intended_use = models.TextField(blank=True)
    limitations = models.TextField(blank=True)
    # A restricted model carries only these tiers (empty: whatever the tier policies allow).
    allowed_tiers = models.JSONField(default=list, blank=True)
    suites = models.ManyToManyField(Suite, blank=True, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self):
        return f"profile of {self.llm_model_id}"


class ModelReview(models.Model):
    """One signed quarterly review; written once, never changed."""

    KEEP, RESTRICT, RETIRE = "keep", "restrict", "retire"
    DECISION_CHOICES = [(KEEP, "Keep approved"), (RESTRICT, "Restrict to tiers"), (RETIRE, "Retire")]

    llm_model = models.ForeignKey(LLMModel, on_delete=models.PROTECT, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reviewer_name = models.CharField(max_length=150)  # kept as signed, whatever happens to the account
    findings = models.TextField()
    evidence_links = models.JSONField(default=list, blank=True)
    decision = models.CharField(max_length=16, choices=DECISION_CHOICES)
    allowed_tiers = models.JSONField(default=list, blank=True)
    status_before = models.CharField(max_length=16)
    status_after = models.CharField(max_length=16)
    previous_due = models.DateField(null=True, blank=True)
    next_review_due = models.DateField(null=True, blank=True)
    affected_prompts = models.JSONField(default=list, blank=True)  # live prompts the decision touched
    auth_method = models.CharField(max_length=16)  # approvals.services.Signature's method
    authenticated_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(decision__in=["keep", "restrict", "retire"]), name="model_review_decision"
            ),
            models.CheckConstraint(
                condition=Q(decision="retire") | Q(next_review_due__isnull=False), name="model_review_next_due"
            ),
        ]

    def __str__(self):
        return f"review of {self.llm_model_id} ({self.decision})"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ImmutableRowError("a signed model review cannot be changed")
        super().save(*args, **kwargs)

    @property
    def signed_with(self):
        return signature_words(self.auth_method)


class RiskPolicy(models.Model):
    """Per tier: whether deploying on a model whose review is overdue is refused or only warned
    about. A migration seeds the defaults (refuse for tiers 0 and 1, warn for 2 and 3)."""

    REFUSE, WARN = "refuse", "warn"
    OVERDUE_CHOICES = [(REFUSE, "Refuse the deploy"), (WARN, "Warn and deploy")]

    tier = models.PositiveSmallIntegerField(unique=True, choices=[(int(t), t.label) for t in TIERS])
    overdue_review = models.CharField(max_length=8, choices=OVERDUE_CHOICES)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["tier"]

    def __str__(self):
        return f"tier {self.tier}: {self.overdue_review} on overdue review"


class ReviewDueNotice(models.Model):
    """A ``model.review_due`` reminder sent for one model's due date: one per (model, date), so the
    daily task never sends the same reminder twice."""

    llm_model = models.ForeignKey(LLMModel, on_delete=models.PROTECT, related_name="+")
    due_on = models.DateField()
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["llm_model", "due_on"], name="review_due_notice_once")]

    def __str__(self):
        return f"review of {self.llm_model_id} due {self.due_on}"


class AccessReviewSignOff(models.Model):
    """A compliance person's signature on one period's access review: who signed, when and how they
    re-authenticated, their comment, and the report they saw (its content and the sha256 of it), so
    the fingerprint can be checked against the stored report at any time. Written once, never
    changed (``save`` refuses, and on PostgreSQL a trigger)."""

    period = models.CharField(max_length=7)  # a quarter: 2026-Q4
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reviewer_name = models.CharField(max_length=150)  # kept as signed, whatever happens to the account
    comment = models.TextField()
    fingerprint = models.CharField(max_length=64)  # sha256 of the report's canonical JSON
    report = models.JSONField()  # the report signed, as it was
    user_count = models.PositiveIntegerField()
    auth_method = models.CharField(max_length=16)  # approvals.services.Signature's method
    authenticated_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(period__regex=r"^[0-9]{4}-Q[1-4]$"), name="access_review_period"),
        ]

    def __str__(self):
        return f"access review {self.period} signed by {self.reviewer_name}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ImmutableRowError("a signed access review cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableRowError("a signed access review cannot be deleted")
