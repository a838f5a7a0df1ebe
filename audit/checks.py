"""Verification of the chain in the database: every event, every signed checkpoint (each with the
key its key id names: the current key or a retired one, ``audit.keyring``), the checkpoint
cadence, and the sink outside the database."""

import json

from django.conf import settings
from django.db import connections
from django.db.models import F, Func, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from core import metrics

from . import keyring
from .chain import EVENT_FIELDS, iso
from .models import AuditCheckpoint, AuditEvent, ChainVerification
from .services import read_sink
from .verify import Problem, Verifier, key_id_of

CHAIN_COLUMNS = (*EVENT_FIELDS, "prev_hash", "hash")


# On PostgreSQL the database writes the log's time format and hands ``data`` over as text: no
# datetime object is built (Django's time zone loader for timestamptz runs in Python) only to be
# formatted again. For years 1000..9999 this is byte for byte what ``chain.iso`` writes.
PG_ISO = "to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
_TIME, _DATA = CHAIN_COLUMNS.index("occurred_at"), CHAIN_COLUMNS.index("data")


_decoder = json.JSONDecoder()


def load_json(text):
    """``json.loads`` for the JSON text PostgreSQL writes (no surrounding whitespace), minus its
    wrapper's work; anything else goes through ``json.loads`` itself."""
    try:
        value, end = _decoder.scan_once(text, 0)
    except StopIteration:
        return json.loads(text)
    return value if end == len(text) else json.loads(text)


def iter_chain_values(queryset=None, chunk_size=5000):
    """Events as tuples in ``CHAIN_COLUMNS`` order, ``occurred_at`` already in the log's ISO form
    and ``data`` a JSON value, streamed from a server-side cursor (no dict per row)."""
    queryset = (AuditEvent.objects.all() if queryset is None else queryset).order_by("sequence")
    if connections[queryset.db].vendor == "postgresql":
        columns = {"occurred_at": "chain_at", "data": "chain_data"}
        rows = queryset.annotate(
            chain_at=Func(F("occurred_at"), template=PG_ISO % "%(expressions)s", output_field=TextField()),
            chain_data=Cast("data", TextField()),
        ).values_list(*(columns.get(name, name) for name in CHAIN_COLUMNS))
        for row in rows.iterator(chunk_size=chunk_size):
            yield (*row[:_DATA], load_json(row[_DATA]), *row[_DATA + 1 :])
        return
    for row in queryset.values_list(*CHAIN_COLUMNS).iterator(chunk_size=chunk_size):
        yield (*row[:_TIME], iso(row[_TIME]), *row[_TIME + 1 :])


def iter_chain_rows(queryset=None, chunk_size=5000):
    """Events as the dicts the chain hashes, streamed from a server-side cursor."""
    for row in iter_chain_values(queryset, chunk_size=chunk_size):
        yield dict(zip(CHAIN_COLUMNS, row, strict=True))


def _trusted(public_key):
    """``({key id: raw key}, hint for an unknown key, problems)``: the keys given (one raw key or a
    list), exactly; else the key ring (the current key and the retired ones)."""
    if public_key:
        given = [public_key] if isinstance(public_key, bytes) else list(public_key)
        hint = (
            "not among the keys given with --public-key: pass its public key too "
            "(manage.py audit_public_key lists every key with its id)"
        )
        return {key_id_of(raw): raw for raw in given}, hint, []
    ring = keyring.load()
    hint = f"neither the current key nor a retired one: add its public key to {keyring.unknown_key_hint()}"
    return ring.trusted(), hint, [Problem(None, "keys", problem) for problem in ring.problems]


def verify_database(*, public_key=None, max_checkpoint_age=None, now=None, save=True):
    """Verify the whole chain; returns the verifier's report (and stores its outcome).

    ``public_key``: a raw public key or a list of them to trust instead of the key ring."""
    checkpoints = [cp.as_chain_dict() for cp in AuditCheckpoint.objects.order_by("id")]
    keys, hint, key_problems = _trusted(public_key)
    verifier = Verifier(keys=keys, watch={cp["sequence"] for cp in checkpoints}, unknown_key_hint=hint)
    for event in iter_chain_rows():
        verifier.event(event)
    verifier.checkpoints(checkpoints)
    if max_checkpoint_age is None:
        max_checkpoint_age = 2 * settings.PROMPTLEDGER_AUDIT_CHECKPOINT_SECONDS
    if max_checkpoint_age:
        verifier.stale(now=now or timezone.now(), max_age_seconds=max_checkpoint_age)
    verifier.sink(read_sink(), {cp["checkpoint_hash"] for cp in checkpoints})
    report = verifier.report
    report.problems.extend(key_problems)  # after the chain's own, which the first problem should name
    metrics.audit_chain_verified(report.ok)
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
