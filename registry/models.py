"""Registry data: teams and roles, the model risk register, prompts, immutable prompt versions,
environments, deployment pointers and API tokens.

Invariants that must never be false live here as database constraints; state changes live in
``registry.services``.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from core.models import APIToken, Membership, SiteRole, Team  # noqa: F401 - their home is core; re-exported

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"


class LLMModel(models.Model):
    """An entry of the model risk register: a provider's exact model id, its named owner and the
    status that decides which tiers may deploy on it."""

    OPENAI, ANTHROPIC, OFFLINE = "openai", "anthropic", "offline"
    PROVIDER_CHOICES = [(OPENAI, "OpenAI / compatible"), (ANTHROPIC, "Anthropic"), (OFFLINE, "Offline")]
    APPROVED, RESTRICTED, RETIRED = "approved", "restricted", "retired"
    STATUS_CHOICES = [(APPROVED, "Approved"), (RESTRICTED, "Restricted"), (RETIRED, "Retired")]

    provider = models.CharField(max_length=32, choices=PROVIDER_CHOICES)
    model_id = models.CharField(max_length=200)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_models")
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=RESTRICTED)
    failure_modes = models.TextField(blank=True)
    last_reviewed_at = models.DateField(null=True, blank=True)
    next_review_due = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["provider", "model_id"]
        constraints = [models.UniqueConstraint(fields=["provider", "model_id"], name="llm_model_unique")]

    def __str__(self):
        return f"{self.provider}:{self.model_id}"


class Prompt(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="prompts")
    tier = models.PositiveSmallIntegerField(validators=[MinValueValidator(0), MaxValueValidator(3)])
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_prompts")
    tags = models.JSONField(default=list, blank=True)
    data_categories = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["slug"]
        constraints = [models.CheckConstraint(condition=Q(tier__gte=0, tier__lte=3), name="prompt_tier_range")]

    def __str__(self):
        return self.slug


class ImmutableRowError(Exception):
    """Raised when code tries to change a row that is written once."""


class PromptVersion(models.Model):
    """One immutable version of a prompt. ``content_hash`` is the sha256 of the canonical JSON of
    messages + variables + model; the row refuses to be saved again (and, on PostgreSQL, a trigger
    refuses any UPDATE)."""

    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    messages = models.JSONField()
    variables = models.JSONField(default=dict)
    model_config = models.JSONField()
    llm_model = models.ForeignKey(LLMModel, on_delete=models.PROTECT, related_name="prompt_versions")
    change_note = models.TextField(blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    content_hash = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["prompt", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["prompt", "number"], name="prompt_version_number_unique"),
            models.UniqueConstraint(fields=["prompt", "content_hash"], name="prompt_version_content_unique"),
            models.CheckConstraint(condition=Q(number__gte=1), name="prompt_version_number_positive"),
        ]

    def __str__(self):
        return f"{self.prompt_id}@v{self.number}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ImmutableRowError("a prompt version is immutable once written")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableRowError("a prompt version is never deleted")


class Environment(models.Model):
    slug = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=100)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "slug"]

    def __str__(self):
        return self.slug


class Deployment(models.Model):
    """The pointer (prompt, environment) → version, with an optional canary and a kill switch."""

    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="deployments")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="deployments")
    version = models.ForeignKey(PromptVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    canary_version = models.ForeignKey(PromptVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    canary_percent = models.PositiveSmallIntegerField(null=True, blank=True)
    disabled = models.BooleanField(default=False)
    disabled_reason = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["prompt__slug", "environment__position"]
        constraints = [
            models.UniqueConstraint(fields=["prompt", "environment"], name="deployment_unique"),
            models.CheckConstraint(
                condition=(
                    Q(canary_version__isnull=True, canary_percent__isnull=True)
                    | Q(canary_version__isnull=False, canary_percent__gte=1, canary_percent__lte=99)
                ),
                name="deployment_canary_consistent",
            ),
        ]

    def __str__(self):
        return f"{self.prompt_id}@{self.environment_id}"
