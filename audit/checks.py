"""Verification of the chain in the database: every event, every signed checkpoint, the
checkpoint cadence, and the sink outside the database."""

from django.conf import settings
from django.utils import timezone

from . import signing
from .chain import iso
from .models import AuditCheckpoint, AuditEvent, ChainVerification
from .services import read_sink
from .verify import Verifier

CHAIN_COLUMNS = (
    "sequence",
    "occurred_at",
    "actor_type",
    "actor_id",
    "actor_username",
    "actor_token",
    "action",
    "target_type",
    "target_id",
    "team",
    "prompt",
    "data",
    "request_id",
    "ip",
    "user_agent",
    "prev_hash",
    "hash",
)


def iter_chain_rows(queryset=None, chunk_size=5000):
    """Events as the dicts the chain hashes, streamed from a server-side cursor."""
    queryset = AuditEvent.objects.all() if queryset is None else queryset
    for row in queryset.order_by("sequence").values_list(*CHAIN_COLUMNS).iterator(chunk_size=chunk_size):
        event = dict(zip(CHAIN_COLUMNS, row, strict=True))
        event["occurred_at"] = iso(event["occurred_at"])
        yield event


def verify_database(*, public_key=None, max_checkpoint_age=None, now=None, save=True):
    """Verify the whole chain; returns the verifier's report (and stores its outcome)."""
    verifier = Verifier(public_key=public_key or signing.public_key_bytes())
    for event in iter_chain_rows():
        verifier.event(event)
    checkpoints = [cp.as_chain_dict() for cp in AuditCheckpoint.objects.order_by("id")]
    verifier.checkpoints(checkpoints)
    if max_checkpoint_age is None:
        max_checkpoint_age = 2 * settings.PROMPTLEDGER_AUDIT_CHECKPOINT_SECONDS
    if max_checkpoint_age:
        verifier.stale(now=now or timezone.now(), max_age_seconds=max_checkpoint_age)
    verifier.sink(read_sink(), {cp["checkpoint_hash"] for cp in checkpoints})
    report = verifier.report
    if save:
        first_problem = report.problems[0] if report.problems else None
        ChainVerification.objects.create(
            ok=report.ok,
            first_sequence=report.first,
            last_sequence=report.last,
            event_count=report.count,
            head_hash=report.head_hash,
            last_checkpoint_sequence=report.last_checkpoint_sequence,
            last_checkpoint_at=report.last_checkpoint_at,
            problem_sequence=first_problem.sequence if first_problem else None,
            problem=str(first_problem) if first_problem else "",
            summary=report.summary(),
        )
    return report
