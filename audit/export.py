"""Streaming exports of the audit trail, from a server-side cursor so memory stays flat.

JSONL: one flat event per line (``"record": "event"``), then the checkpoints the export spans, then
a manifest signed with the audit key that covers the sha256 of every line before it — so a changed
byte, a removed line or a cut file fails ``python -m audit.verify``. CSV: the same event columns
(``data`` as JSON) for spreadsheets; verify with the JSONL export.
"""

import csv
import hashlib
import io
import json

from django.db import transaction
from django.utils import timezone

from . import events, signing
from .chain import canonical, iso
from .checks import CHAIN_COLUMNS, iter_chain_rows
from .models import AuditCheckpoint, AuditEvent
from .selectors import filter_events, is_contiguous, visible_events

BATCH = 2000


def start_export(*, actor, format, filters):
    """Check permission, record the export as an event, and return the streaming body."""
    queryset = filter_events(visible_events(actor), filters)
    with transaction.atomic():
        events.audit_exported(actor, format=format, filters=filters)
    contiguous = is_contiguous(actor, filters)
    if format == "csv":
        return _csv(queryset)
    return _jsonl(queryset, actor=actor, filters=filters, contiguous=contiguous)


def _jsonl(queryset, *, actor, filters, contiguous):
    digest = hashlib.sha256()
    first = last = None
    count = 0
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    buffer = []
    for event in iter_chain_rows(queryset, chunk_size=BATCH):
        line = (dumps({"record": "event", **event}) + "\n").encode("utf-8")
        digest.update(line)
        buffer.append(line)
        count += 1
        first = event["sequence"] if first is None else first
        last = event["sequence"]
        if len(buffer) >= BATCH:
            yield b"".join(buffer)
            buffer.clear()
    if first is not None:
        for checkpoint in AuditCheckpoint.objects.filter(sequence__gte=first, sequence__lte=last).order_by("id"):
            line = (dumps({"record": "checkpoint", **checkpoint.as_chain_dict()}) + "\n").encode("utf-8")
            digest.update(line)
            buffer.append(line)
    head = AuditEvent.objects.order_by("-sequence").values_list("hash", flat=True).first()
    manifest = {
        "filters": filters,
        "contiguous": contiguous,
        "first_sequence": first,
        "last_sequence": last,
        "count": count,
        "chain_head_hash": head,
        "content_sha256": digest.hexdigest(),
        "generated_at": iso(timezone.now()),
        "generated_by": actor.username,
        "public_key": signing.public_key_b64(),
        "key_id": signing.key_id(),
    }
    manifest["signature"] = signing.sign(canonical(manifest))
    buffer.append((dumps({"record": "manifest", **manifest}) + "\n").encode("utf-8"))
    yield b"".join(buffer)


def _csv(queryset):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CHAIN_COLUMNS)
    rows = 0
    for event in iter_chain_rows(queryset, chunk_size=BATCH):
        event["data"] = json.dumps(event["data"], ensure_ascii=False, sort_keys=True)
        writer.writerow([event[c] if event[c] is not None else "" for c in CHAIN_COLUMNS])
        rows += 1
        if rows % BATCH == 0:
            yield out.getvalue().encode("utf-8")
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode("utf-8")
