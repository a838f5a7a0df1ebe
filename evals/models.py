"""Eval data: suites of cases, runs of a suite against a prompt version, the run's work items
(PostgreSQL holds the truth; the broker only signals) and one result per (run, case)."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from registry.models import LLMModel, Prompt, PromptVersion, Team


class Suite(models.Model):
    """A named set of cases, owned by a team or shared site-wide (team is null)."""

    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.PROTECT, related_name="suites")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.slug

    @property
    def shared(self):
        return self.team_id is None


class Case(models.Model):
    suite = models.ForeignKey(Suite, on_delete=models.CASCADE, related_name="cases")
    position = models.PositiveIntegerField()
    description = models.CharField(max_length=500, blank=True)
    vars = models.JSONField(default=dict)
    expected = models.TextField(null=True, blank=True)
    assertions = models.JSONField(default=list)
    tags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["suite", "position"]
        constraints = [models.UniqueConstraint(fields=["suite", "position"], name="case_position_unique")]

    def __str__(self):
        return f"{self.suite_id}#{self.position}"


class EvalRun(models.Model):
    MANUAL, CI, SCHEDULE, PRE_RELEASE, POST_INCIDENT = "manual", "ci", "schedule", "pre_release", "post_incident"
    TRIGGER_CHOICES = [(t, t.replace("_", " ")) for t in (MANUAL, CI, SCHEDULE, PRE_RELEASE, POST_INCIDENT)]
    QUEUED, RUNNING, COMPLETED, COMPLETED_WITH_ERRORS, CANCELLED, FAILED = (
        "queued",
        "running",
        "completed",
        "completed_with_errors",
        "cancelled",
        "failed",
    )
    STATUS_CHOICES = [
        (s, s.replace("_", " ")) for s in (QUEUED, RUNNING, COMPLETED, COMPLETED_WITH_ERRORS, CANCELLED, FAILED)
    ]
    FINISHED = (COMPLETED, COMPLETED_WITH_ERRORS, CANCELLED, FAILED)

    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="eval_runs")
    version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="eval_runs")
    content_hash = models.CharField(max_length=64, db_index=True)
    suite = models.ForeignKey(Suite, on_delete=models.PROTECT, related_name="runs")
    llm_model = models.ForeignKey(LLMModel, on_delete=models.PROTECT, related_name="eval_runs")
    model_config = models.JSONField()
    trigger = models.CharField(max_length=16, choices=TRIGGER_CHOICES, default=MANUAL)
    status = models.CharField(max_length=24, choices=STATUS_CHOICES, default=QUEUED, db_index=True)
    cancel_requested = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    total = models.PositiveIntegerField(default=0)
    pass_rate = models.FloatField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    # A worker lost mid-run (it stopped renewing its leases): how many times its cases were taken
    # back for another worker (by the reaper, or a claim that took over expired leases), and when
    # it last happened. The run page shows "worker lost, resumed".
    recoveries = models.PositiveIntegerField(default=0)
    resumed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["prompt", "content_hash", "suite"]),
            # The runs list, newest first: one page read off the index, not every run sorted.
            models.Index(fields=["-created_at", "-id"], name="eval_run_newest_idx"),
        ]

    def __str__(self):
        return f"run {self.pk} of {self.suite_id} on {self.version_id}"

    @property
    def finished(self):
        return self.status in self.FINISHED


class EvalItem(models.Model):
    """One case of one run as a unit of work: claimed with a lease that its worker renews while it
    lives and that expires when it dies, so a killed worker's cases come back (at most
    ``PROMPTLEDGER_EVAL_MAX_CLAIMS`` claims, then an error result); marked done in the transaction
    that writes the result."""

    PENDING, CLAIMED, DONE, CANCELLED = "pending", "claimed", "done", "cancelled"
    STATUS_CHOICES = [(s, s) for s in (PENDING, CLAIMED, DONE, CANCELLED)]
    OPEN = [PENDING, CLAIMED]  # still to run: what eval_item_open_idx holds

    # No index of its own: the (run, case) constraint's leads with the run.
    run = models.ForeignKey(EvalRun, on_delete=models.CASCADE, related_name="items", db_index=False)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveIntegerField()
    snapshot = models.JSONField()  # the case as it was when the run started
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=PENDING)
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=32, blank=True)
    claims = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["run", "position"]
        constraints = [models.UniqueConstraint(fields=["run", "case"], name="eval_item_unique")]
        # Partial, so that they hold only the items still to run: a claim walks a run's open items,
        # never the done ones (a claim of a big run read every item of it), and an item marked done
        # leaves them instead of adding entries to them.
        indexes = [
            models.Index(fields=["run", "status"], name="eval_item_open_idx",
                         condition=Q(status__in=["pending", "claimed"])),
            models.Index(fields=["lease_until"], name="eval_item_leased_idx", condition=Q(status="claimed")),
        ]

    def __str__(self):
        return f"item {self.run_id}/{self.case_id} {self.status}"


class EvalResult(models.Model):
    # No index of its own: the (run, case) constraint's leads with the run.
    run = models.ForeignKey(EvalRun, on_delete=models.CASCADE, related_name="results", db_index=False)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveIntegerField()
    output = models.TextField(blank=True)
    passed = models.BooleanField()
    verdicts = models.JSONField(default=list)
    latency_ms = models.FloatField(null=True, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.FloatField(default=0.0)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "case"], name="eval_result_unique"),
            models.CheckConstraint(condition=Q(cost_usd__gte=0), name="eval_result_cost_nonnegative"),
        ]
        # Spend is read from the roll-up (RunSpend), so results carry no index for it: one index
        # fewer to write per result.

    def __str__(self):
        return f"result {self.run_id}/{self.case_id} {'pass' if self.passed else 'fail'}"


class RunSpend(models.Model):
    """What one run's results cost within one quarter hour (UTC): the roll-up spend is read from.

    The database keeps it: triggers on ``evals_evalresult`` (``evals/migrations/0007_run_spend``)
    add every inserted result, move an updated one and take away a deleted one, in the statement's
    own transaction, whoever writes (the runner, the admin, a data migration). Nothing in Python
    writes it. A quarter hour because every time zone's month starts on one, so the months of any
    ``TIME_ZONE`` are exact sums of buckets, and a run rarely spans more than a few.
    """

    BUCKET_SECONDS = 900

    run = models.ForeignKey(EvalRun, on_delete=models.CASCADE, related_name="+")
    bucket = models.DateTimeField(help_text="The start of the quarter hour (UTC) its results were written in.")
    cost_usd = models.FloatField(default=0.0)
    results = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "bucket"], name="run_spend_unique")]
        indexes = [models.Index(fields=["bucket"], name="run_spend_bucket_idx")]

    def __str__(self):
        return f"spend of run {self.run_id} from {self.bucket:%Y-%m-%d %H:%M}: {self.cost_usd} USD"


class Gate(models.Model):
    """Per prompt: the suites and thresholds a version must meet before it may go live."""

    prompt = models.OneToOneField(Prompt, on_delete=models.CASCADE, related_name="gate")
    max_regression = models.FloatField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(max_regression__isnull=True) | Q(max_regression__gte=0, max_regression__lte=1),
                name="gate_max_regression_range",
            )
        ]

    def __str__(self):
        return f"gate of {self.prompt_id}"


class GateSuite(models.Model):
    gate = models.ForeignKey(Gate, on_delete=models.CASCADE, related_name="suites")
    suite = models.ForeignKey(Suite, on_delete=models.PROTECT, related_name="+")
    min_pass_rate = models.FloatField()

    class Meta:
        ordering = ["gate", "suite__slug"]
        constraints = [
            models.UniqueConstraint(fields=["gate", "suite"], name="gate_suite_unique"),
            models.CheckConstraint(condition=Q(min_pass_rate__gte=0, min_pass_rate__lte=1), name="gate_min_pass_range"),
        ]

    def __str__(self):
        return f"{self.suite_id} >= {self.min_pass_rate}"


class DriftNotice(models.Model):
    """An in-app notice on a prompt: a nightly (scheduled) run of a live production version fell
    beyond its gate's threshold since the previous scheduled run. One per run, at most."""

    BELOW_THRESHOLD, REGRESSION = "below_threshold", "regression"
    REASON_CHOICES = [(BELOW_THRESHOLD, "below the gate's minimum pass rate"), (REGRESSION, "dropped too far")]

    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="drift_notices")
    run = models.OneToOneField(EvalRun, on_delete=models.PROTECT, related_name="drift_notice")
    previous_run = models.ForeignKey(EvalRun, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    suite = models.ForeignKey(Suite, on_delete=models.PROTECT, related_name="+")
    environment = models.SlugField(max_length=32)
    pass_rate = models.FloatField()
    previous_pass_rate = models.FloatField(null=True, blank=True)
    threshold = models.FloatField()
    reason = models.CharField(max_length=24, choices=REASON_CHOICES)
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["prompt", "acknowledged_at"])]

    def __str__(self):
        return f"drift of {self.prompt_id} on run {self.run_id} ({self.reason})"


class TeamBudget(models.Model):
    """A team's monthly eval budget in US dollars: the same ceiling every calendar month (in
    ``TIME_ZONE``). At 80% of it a warning is sent once a month; at 100% new runs are refused
    (``evals.budgets``) unless an owner overrode the budget for that month."""

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="eval_budget")
    monthly_usd = models.DecimalField(max_digits=12, decimal_places=2)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(monthly_usd__gt=0), name="team_budget_positive")]

    def __str__(self):
        return f"budget of {self.team_id}: {self.monthly_usd} USD a month"


class BudgetOverride(models.Model):
    """An owner's decision that a team's runs may go on past its budget for one month, and why."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    month = models.DateField(help_text="The first day of the month it covers.")
    reason = models.TextField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "month"], name="budget_override_once_a_month")]

    def __str__(self):
        return f"override of {self.team_id} for {self.month:%Y-%m}"


class BudgetWarning(models.Model):
    """The 80% warning of one team and month: its row is what makes it (and its webhook) once."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    month = models.DateField()
    budget_usd = models.DecimalField(max_digits=12, decimal_places=2)
    spent_usd = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "month"], name="budget_warning_once_a_month")]

    def __str__(self):
        return f"budget warning of {self.team_id} for {self.month:%Y-%m}"
