"""Webhook subscriptions, the outbox of deliveries, and every attempt made at each delivery.

A ``Delivery`` is written in the transaction of the change it reports, with its body frozen then
(the exact JSON text that is signed and sent, byte for byte, on every attempt); a worker claims it
with a conditional UPDATE, so a delivery is never sent by two workers at once. Each attempt,
whatever became of it, is a ``DeliveryAttempt`` row.
"""

import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.db import models

from registry.models import Team

# Every event a subscription may ask for; "*" means all of them. ``ping`` is sent only by a test.
EVENTS = [
    "version.created",
    "deploy_request.opened",
    "deploy_request.approved",
    "deploy_request.rejected",
    "deployment.changed",
    "kill_switch.changed",
    "eval_run.completed",
    "gate.failed",
    "drift.alert",
    "model.review_due",  # risk: a model's quarterly review is due or overdue (site-wide)
    "budget.warning",  # evals: a team's eval spend reached 80% of the month's budget (once a month)
]
ALL_EVENTS = "*"
PING = "ping"


def redacted_url(url):
    """The URL reduced to scheme and host (``https://hooks.example.com/…``): safe to show in the
    audit trail and logs, where a path or query may carry a token."""
    parts = urlsplit(url or "")
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme or '?'}://{host}{port}/…"


class Subscription(models.Model):
    """Where to POST which events: one team's (``team`` set) or every team's (site-wide)."""

    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list, help_text='Event names, or ["*"] for every event.')
    secret = models.CharField(max_length=200)  # sealed (webhooks.secret_box): use signing_secret()
    active = models.BooleanField(default=True)
    description = models.CharField(max_length=200, blank=True)
    # Configured by the operator (PROMPTLEDGER_ALERT_WEBHOOK_URL/SECRET), kept in step with the
    # environment by webhooks.operator; people cannot edit it.
    from_settings = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["from_settings"], condition=models.Q(from_settings=True), name="webhooks_one_operator_sub"
            )
        ]

    def __str__(self):
        return f"webhook {self.pk} → {self.display_url}"

    @property
    def display_url(self):
        return redacted_url(self.url)

    def signing_secret(self):
        """The secret that signs this subscription's deliveries, unsealed for the moment."""
        from .secret_box import unseal

        return unseal(self.secret)

    def set_signing_secret(self, raw):
        from .secret_box import seal

        self.secret = seal(raw)

    def wants(self, event):
        return ALL_EVENTS in self.events or event in self.events


class Delivery(models.Model):
    """One event for one subscription: pending until delivered, or failed after the last attempt."""

    PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
    STATUS_CHOICES = [(PENDING, "Pending"), (DELIVERED, "Delivered"), (FAILED, "Failed")]

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="deliveries")
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event = models.CharField(max_length=64)
    event_id = models.UUIDField(db_index=True)
    body = models.TextField(help_text="The JSON text sent, frozen when the event was emitted.")
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True)
    redelivery_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhooks_due_idx")]
        verbose_name_plural = "deliveries"  # not "Deliverys" in the admin

    def __str__(self):
        return f"delivery {self.pk} ({self.event}, {self.status})"


class DeliveryAttempt(models.Model):
    """One POST of a delivery: when, how long, what came back, and what it led to."""

    IN_FLIGHT, DELIVERED, RETRY, FAILED, LOST = "in_flight", "delivered", "retry", "failed", "lost"
    OUTCOME_CHOICES = [
        (IN_FLIGHT, "In flight"),
        (DELIVERED, "Delivered"),
        (RETRY, "Will retry"),
        (FAILED, "Gave up"),
        (LOST, "No answer recorded"),
    ]

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=200, blank=True)
    outcome = models.CharField(max_length=16, choices=OUTCOME_CHOICES, default=IN_FLIGHT)

    class Meta:
        ordering = ["delivery_id", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="webhooks_attempt_once")]

    def __str__(self):
        return f"attempt {self.number} of delivery {self.delivery_id}: {self.outcome}"


class AuditStream(models.Model):
    """The audit trail sent on, in sequence order, to one HTTP endpoint (a SIEM): ``cursor`` is the
    last sequence the receiver acknowledged with a 2xx, ``cursor_hash`` that event's chain hash (the
    next batch must link to it). One worker at a time sends a stream: it holds the lease
    (``lease_owner`` until ``lease_until``), taken by a conditional UPDATE (webhooks.audit_stream)."""

    JSONL, SPLUNK_HEC = "jsonl", "splunk_hec"
    FORMAT_CHOICES = [(JSONL, "JSON lines (the audit export's event lines)"), (SPLUNK_HEC, "Splunk HEC")]

    name = models.SlugField(max_length=50, unique=True)
    url = models.URLField(max_length=2000)
    format = models.CharField(max_length=16, choices=FORMAT_CHOICES, default=JSONL)
    token = models.CharField(max_length=500, blank=True)  # sealed (webhooks.secret_box): use auth_token()
    sourcetype = models.CharField(max_length=100, default="promptledger:audit")
    batch_size = models.PositiveIntegerField(default=500)
    interval_seconds = models.PositiveIntegerField(default=10)
    active = models.BooleanField(default=True)
    cursor = models.PositiveBigIntegerField(default=0)
    cursor_hash = models.CharField(max_length=64)
    lease_owner = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0)  # consecutive failed batches
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True)
    delivered_events = models.PositiveBigIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(batch_size__gte=1, batch_size__lte=5000),
                                   name="webhooks_stream_batch_size"),
            models.CheckConstraint(condition=models.Q(interval_seconds__gte=1, interval_seconds__lte=3600),
                                   name="webhooks_stream_interval"),
        ]

    def __str__(self):
        return f"audit stream {self.name} → {self.display_url}"

    @property
    def display_url(self):
        return redacted_url(self.url)

    def auth_token(self):
        """The receiver's token (HEC token, bearer token), unsealed for the moment; "" for none."""
        from .secret_box import unseal

        return unseal(self.token) if self.token else ""

    def set_auth_token(self, raw):
        from .secret_box import seal

        self.token = seal(raw) if raw else ""
