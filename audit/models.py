"""Audit rows: append-only events and signed checkpoints. Neither is ever updated or deleted:
the models refuse, and on PostgreSQL triggers refuse UPDATE, DELETE and TRUNCATE."""

from django.db import models

from .chain import iso


class AppendOnlyError(Exception):
    """Raised when code tries to change or remove an audit row."""


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("audit rows are append-only")

    def delete(self):
        raise AppendOnlyError("audit rows are append-only")

    _raw_delete = delete


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("audit rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("audit rows are append-only")


class AuditEvent(AppendOnlyModel):
    """One event of the chain. The actor's name and id live in the row itself, so deleting a user
    never loses who did what; no secret is ever stored here."""

    sequence = models.PositiveBigIntegerField(unique=True)
    occurred_at = models.DateTimeField(db_index=True)
    actor_type = models.CharField(max_length=16)  # user, token, system
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_username = models.CharField(max_length=150, blank=True)  # indexed with sequence, below
    actor_token = models.CharField(max_length=16, blank=True)  # the token's public prefix
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=200, blank=True)
    team = models.CharField(max_length=64, blank=True, db_index=True)
    prompt = models.CharField(max_length=100, blank=True, db_index=True)
    data = models.JSONField(default=dict)
    request_id = models.CharField(max_length=64, blank=True)
    ip = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["sequence"]
        indexes = [
            # The audit log's filters on 1M events (audit.selectors): a deploy request's events and a
            # version's are found by their target; one person's newest events by walking their own
            # index backwards, even when a filter (hidden sign-ins) leaves few or none of them.
            models.Index(fields=["target_type", "target_id"], name="audit_event_target"),
            models.Index(fields=["actor_username", "sequence"], name="audit_event_actor_seq"),
        ]

    def __str__(self):
        return f"#{self.sequence} {self.action}"

    def as_chain_dict(self):
        return {
            "sequence": self.sequence,
            "occurred_at": iso(self.occurred_at),
            "actor_type": self.actor_type,
            "actor_id": self.actor_id,
            "actor_username": self.actor_username,
            "actor_token": self.actor_token,
            "action": self.action,
            "target_type": self.target_type,
            "target_id": self.target_id,
            "team": self.team,
            "prompt": self.prompt,
            "data": self.data,
            "request_id": self.request_id,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


class AuditCheckpoint(AppendOnlyModel):
    """The chain head at ``sequence``, signed with an Ed25519 key kept outside the database, and
    linked to the checkpoint before it."""

    sequence = models.PositiveBigIntegerField(db_index=True)
    head_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(db_index=True)
    prev_checkpoint_hash = models.CharField(max_length=64)
    key_id = models.CharField(max_length=32)
    signature = models.CharField(max_length=128)
    checkpoint_hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"checkpoint @{self.sequence}"

    def as_chain_dict(self):
        return {
            "sequence": self.sequence,
            "head_hash": self.head_hash,
            "created_at": iso(self.created_at),
            "prev_checkpoint_hash": self.prev_checkpoint_hash,
            "key_id": self.key_id,
            "signature": self.signature,
            "checkpoint_hash": self.checkpoint_hash,
        }


class ChainVerification(models.Model):
    """The outcome of one verification of the whole chain (by ``verify_audit`` or the periodic
    task), so pages can show the chain's state without re-hashing it on every view."""

    verified_at = models.DateTimeField(auto_now_add=True, db_index=True)
    ok = models.BooleanField()
    first_sequence = models.PositiveBigIntegerField(null=True)
    last_sequence = models.PositiveBigIntegerField(null=True)
    event_count = models.PositiveBigIntegerField(default=0)
    head_hash = models.CharField(max_length=64, blank=True)
    last_checkpoint_sequence = models.PositiveBigIntegerField(null=True)
    last_checkpoint_at = models.DateTimeField(null=True)
    problem_sequence = models.PositiveBigIntegerField(null=True)
    problem = models.TextField(blank=True)
    summary = models.TextField()

    class Meta:
        ordering = ["-verified_at"]

    def __str__(self):
        return self.summary
