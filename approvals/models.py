"""Approvals data: tier policies, named approvers, deploy requests and the approvals bound to them.

What must never be false is a database constraint here: one policy per tier, one live decision
per person per request, a canary percentage in range. The rules that decide whether a request may
be approved or deployed live in ``approvals.requirements`` and ``approvals.services``.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from registry.models import Environment, LLMModel, Prompt, PromptVersion, Team


class TierPolicy(models.Model):
    """What a tier demands before a deploy. ``version`` goes up on every edit; approvals bind to
    it, so a policy change leaves earlier approvals unmatched instead of silently reinterpreting
    them. Requests keep a snapshot of the policy they were opened under."""

    tier = models.PositiveSmallIntegerField(unique=True)
    required_approvals = models.PositiveSmallIntegerField(default=0)
    named_approvers_only = models.BooleanField(default=False)
    requires_gate = models.BooleanField(default=True)
    # Register statuses a prompt of this tier may be deployed on; a retired model never is.
    allowed_model_statuses = models.JSONField(default=list)
    reauth_for_approval = models.BooleanField(default=False)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["tier"]
        verbose_name_plural = "tier policies"
        constraints = [
            models.CheckConstraint(condition=Q(tier__gte=0, tier__lte=3), name="tier_policy_tier_range"),
            models.CheckConstraint(condition=Q(required_approvals__lte=10), name="tier_policy_approvals_range"),
        ]

    def __str__(self):
        return f"tier {self.tier} policy v{self.version}"

    def snapshot(self):
        return {
            "tier": self.tier,
            "version": self.version,
            "required_approvals": self.required_approvals,
            "named_approvers_only": self.named_approvers_only,
            "requires_gate": self.requires_gate,
            "allowed_model_statuses": list(self.allowed_model_statuses),
            "reauth_for_approval": self.reauth_for_approval,
        }

    @property
    def direct(self):
        """Nothing to wait for: the request deploys as it is opened (audited as always)."""
        return self.required_approvals == 0 and not self.requires_gate


class ApproverGroup(models.Model):
    """A named set of a team's members who may approve the prompts that list the group."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="approver_groups")
    slug = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="approver_groups")

    class Meta:
        ordering = ["team__slug", "slug"]
        constraints = [models.UniqueConstraint(fields=["team", "slug"], name="approver_group_unique")]

    def __str__(self):
        return f"{self.team.slug}/{self.slug}"


class NamedApprover(models.Model):
    """One entry of a prompt's named approvers: a user, or an approver group of its team."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="named_approvers")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    group = models.ForeignKey(ApproverGroup, null=True, blank=True, on_delete=models.CASCADE)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, group__isnull=True) | Q(user__isnull=True, group__isnull=False),
                name="named_approver_user_xor_group",
            ),
            models.UniqueConstraint(fields=["prompt", "user"], name="named_approver_user_unique"),
            models.UniqueConstraint(fields=["prompt", "group"], name="named_approver_group_unique"),
        ]

    def __str__(self):
        return f"{self.prompt_id}: {self.user or self.group}"


class DeployRequest(models.Model):
    """A request to put a version in an environment (full or canary), to roll back, or to lower a
    prompt's tier. ``policy_snapshot`` is the policy in force when it was opened; it never changes."""

    DEPLOY, ROLLBACK, TIER_CHANGE = "deploy", "rollback", "tier_change"
    KIND_CHOICES = [(DEPLOY, "Deploy"), (ROLLBACK, "Rollback"), (TIER_CHANGE, "Tier change")]
    PENDING, APPROVED, DEPLOYED, REJECTED, WITHDRAWN, SUPERSEDED = (
        "pending", "approved", "deployed", "rejected", "withdrawn", "superseded",
    )
    STATUS_CHOICES = [(s, s.capitalize()) for s in (PENDING, APPROVED, DEPLOYED, REJECTED, WITHDRAWN, SUPERSEDED)]
    OPEN = (PENDING, APPROVED, REJECTED)
    # A break-glass rollback is done at once; its review is signed afterwards by named approvers.
    REVIEW_NONE, REVIEW_PENDING, REVIEW_SIGNED = "", "pending", "signed"

    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="deploy_requests")
    kind = models.CharField(max_length=16, choices=KIND_CHOICES, default=DEPLOY)
    version = models.ForeignKey(PromptVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    environment = models.ForeignKey(
        Environment, null=True, blank=True, on_delete=models.PROTECT, related_name="deploy_requests"
    )
    canary_percent = models.PositiveSmallIntegerField(null=True, blank=True)
    target_tier = models.PositiveSmallIntegerField(null=True, blank=True)
    # What was live when the request was opened: the diff and the gate's baseline are against it.
    base_version = models.ForeignKey(PromptVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    content_hash = models.CharField(max_length=64, blank=True)
    llm_model = models.ForeignKey(LLMModel, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    tier = models.PositiveSmallIntegerField()
    policy_snapshot = models.JSONField()
    rationale = models.TextField()
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=PENDING, db_index=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    deployed_at = models.DateTimeField(null=True, blank=True)
    deployed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    superseded_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    break_glass = models.BooleanField(default=False)
    review_status = models.CharField(max_length=16, blank=True, default=REVIEW_NONE)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["prompt", "environment", "status"], name="deploy_request_open_idx"),
            # Every list of requests is newest first: one page read off the index, not all sorted.
            models.Index(fields=["-created_at", "-id"], name="deploy_request_newest_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(canary_percent__isnull=True) | Q(canary_percent__gte=1, canary_percent__lte=99),
                name="deploy_request_canary_range",
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind="tier_change", target_tier__isnull=False, version__isnull=True)
                    | (~Q(kind="tier_change") & Q(version__isnull=False, environment__isnull=False))
                ),
                name="deploy_request_kind_consistent",
            ),
        ]

    def __str__(self):
        return f"request #{self.pk} {self.kind} {self.prompt_id}"

    @property
    def is_open(self):
        return self.status in self.OPEN

    @property
    def title(self):
        if self.kind == self.TIER_CHANGE:
            return f"{self.prompt.slug}: tier {self.tier} → {self.target_tier}"
        what = f"v{self.version.number} to {self.environment.slug}"
        if self.canary_percent:
            what += f" as a {self.canary_percent}% canary"
        prefix = "Break-glass rollback" if self.break_glass else ("Rollback" if self.kind == self.ROLLBACK else "")
        return f"{prefix + ' ' if prefix else ''}{self.prompt.slug} {what}"


SIGNED_WITH = {
    "password": "password entered at", "session": "signed in at", "idp": "signed in at the identity provider at",
    "api_token": "API token, used at", "bootstrap_demo": "demo data, at",
}


def signature_words(method):
    """A signature's method in plain words, to be followed by its time: "password entered at"."""
    return SIGNED_WITH.get(method, f"{method} at")


class Approval(models.Model):
    """One person's decision on a request, bound to what they saw: the content hash, the
    environment, the model and the policy version. ``withdrawn_at`` ends a decision (a rejection
    blocks until the person who made it withdraws it); a person has at most one live decision."""

    APPROVE, REJECT, SIGN_OFF = "approve", "reject", "sign_off"
    DECISION_CHOICES = [(APPROVE, "Approve"), (REJECT, "Reject"), (SIGN_OFF, "Review sign-off")]

    request = models.ForeignKey(DeployRequest, on_delete=models.PROTECT, related_name="approvals")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=16, choices=DECISION_CHOICES)
    comment = models.TextField(blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    environment = models.CharField(max_length=32, blank=True)
    model_key = models.CharField(max_length=240, blank=True)
    tier = models.PositiveSmallIntegerField()
    policy_version = models.PositiveIntegerField()
    # The electronic signature: how and when the person proved who they were for this decision.
    auth_method = models.CharField(max_length=32)
    authenticated_at = models.DateTimeField()  # for an "idp" signature, the IdP's auth_time
    amr = models.JSONField(default=list, blank=True)  # an "idp" signature's methods, as the IdP named them
    created_at = models.DateTimeField(auto_now_add=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "user"], condition=Q(withdrawn_at__isnull=True), name="approval_one_live_per_person"
            ),
        ]

    def __str__(self):
        return f"{self.user} {self.decision} #{self.request_id}"

    # How pages say a decision in plain words: "ann approved", "withdraw my approval".
    PAST = {APPROVE: "approved", REJECT: "rejected", SIGN_OFF: "signed the review of"}
    NOUN = {APPROVE: "approval", REJECT: "rejection", SIGN_OFF: "review sign-off"}
    @property
    def decision_past(self):
        return self.PAST.get(self.decision, self.decision)

    @property
    def decision_noun(self):
        return self.NOUN.get(self.decision, self.decision)

    @property
    def signed_with(self):
        return signature_words(self.auth_method)
