"""Streaming exports of the audit trail, from a server-side cursor so memory stays flat.

JSONL: one flat event per line (``"record": "event"``), then the checkpoints the export spans, then
a manifest signed with the current audit key that covers the sha256 of every line before it — so a
changed byte, a removed line or a cut file fails ``python -m audit.verify`` — and lists every public
key (by key id) its checkpoints were signed with, retired ones included. CSV: the same event columns
(``data`` as JSON) for spreadsheets; verify with the JSONL export.
"""

import csv
import hashlib
import io
import json
from itertools import islice
from json.encoder import c_make_encoder, encode_basestring

from django.db import connections, transaction
from django.db.models import TextField
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast
from django.utils import timezone

from core import access

from . import events, keyring, signing
from .chain import canonical, iso
from .checks import CHAIN_COLUMNS, PG_ISO, iter_chain_rows, iter_chain_values, load_json
from .models import AuditCheckpoint, AuditEvent
from .selectors import filter_events, is_contiguous, visible_events
from .spreadsheet import safe_cell
from .transactions import change, retry_transient

BATCH = 2000  # events per block written to the response
FETCH = 5000  # rows per round trip to the server-side cursor


@retry_transient
def start_export(*, actor, format, filters):
    """Check permission, record the export as an event, and return the streaming body."""
    access.require(actor, "audit.read")
    queryset = filter_events(visible_events(actor), filters)
    with change():
        events.audit_exported(actor, format=format, filters=filters)
    contiguous = is_contiguous(actor, filters)
    if format == "csv":
        return _csv(queryset)
    return _jsonl(queryset, actor=actor, filters=filters, contiguous=contiguous)


# --- event lines ----------------------------------------------------------------------------------
# Both ways below write exactly what ``dumps({"record": "event", **event})`` writes for each event
# (tests/audit/test_export_speed_paths.py holds them to it), without a dict per row or the
# encoder's walk over one: half the time of an export of a million events went there.

_EVENT_LINE = '{"record":"event",' + ",".join(f'"{name}":%s' for name in CHAIN_COLUMNS) + "}\n"
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _compact_json():
    """``_encoder.encode`` without building the C encoder again for every call."""
    if c_make_encoder is None:
        return _encoder.encode
    encode = c_make_encoder(None, _encoder.default, encode_basestring, None, ":", ",", False, False, True)
    return lambda value: "".join(encode(value, 0))


def _lines_in_python(queryset):
    """``(first, last, lines)`` per block, each value encoded here. Every column but ``sequence``,
    ``actor_id`` and ``data`` is NOT NULL text, which the string encoder alone writes as JSON."""
    text, dumps = encode_basestring, _compact_json()
    for rows in _chunks(iter_chain_values(queryset, chunk_size=FETCH), BATCH):
        lines = [
            _EVENT_LINE
            % (
                sequence, text(occurred_at), text(actor_type), "null" if actor_id is None else actor_id,
                text(actor_username), text(actor_token), text(action), text(target_type), text(target_id),
                text(team), text(prompt), dumps(data), text(request_id), text(ip), text(user_agent),
                text(prev_hash), text(hash_),
            )
            for (
                sequence, occurred_at, actor_type, actor_id, actor_username, actor_token, action, target_type,
                target_id, team, prompt, data, request_id, ip, user_agent, prev_hash, hash_,
            ) in rows
        ]
        yield rows[0][0], rows[-1][0], lines


def _pg_json(connection, column):
    """SQL writing one column as ``_encoder`` would. PostgreSQL's ``to_json`` escapes a string as
    Python's encoder does with ``ensure_ascii=False``: the same seven short escapes, ``\\u00xx`` in
    lower case for the other control characters, every other character as it is."""
    quoted = f"{connection.ops.quote_name(AuditEvent._meta.db_table)}.{connection.ops.quote_name(column)}"
    if column == "sequence":
        return f"{quoted}::text"
    if column == "actor_id":
        return f"COALESCE({quoted}::text, 'null')"
    if column == "occurred_at":  # chain.iso, for years 1000..9999
        return f"""'"' || {PG_ISO % quoted} || '"'"""
    return f"to_json({quoted})::text"


def _lines_in_postgresql(queryset):
    """``(first, last, lines)`` per block, PostgreSQL writing each line but ``data``: Python only
    re-encodes that, as PostgreSQL writes jsonb with spaces and its own forms of numbers."""
    connection = connections[queryset.db]
    cut = CHAIN_COLUMNS.index("data")
    before = "".join(f',"{name}":\x00{name}\x00' for name in CHAIN_COLUMNS[:cut])
    after = "".join(f',"{name}":\x00{name}\x00' for name in CHAIN_COLUMNS[cut + 1 :])

    def sql(template):  # literal text between the columns' JSON; no quote or percent sign in it
        pieces = template.split("\x00")
        return " || ".join(
            _pg_json(connection, piece) if index % 2 else f"'{piece}'" for index, piece in enumerate(pieces) if piece
        )

    head = sql('{"record":"event"' + before + ',"data":')
    tail = sql(after + "}")
    rows = (
        queryset.order_by("sequence")
        .annotate(
            line_head=RawSQL(head, (), output_field=TextField()),  # noqa: S611 - column names, no input
            line_data=Cast("data", TextField()),
            line_tail=RawSQL(tail, (), output_field=TextField()),  # noqa: S611 - column names, no input
        )
        .values_list("sequence", "line_head", "line_data", "line_tail")
    )
    dumps = _compact_json()
    statement, params = rows.query.sql_with_params()
    # COPY streams rows while Python writes lines from the ones already here (a cursor's FETCH
    # leaves the database idle meanwhile); the transaction holds one snapshot, and ends with it.
    with transaction.atomic(using=queryset.db), connection.cursor() as cursor:
        with cursor.copy(f"COPY ({statement}) TO STDOUT", params) as copy:
            copy.set_types(["int8", "text", "text", "text"])
            for chunk in _chunks(copy.rows(), BATCH):
                lines = [f"{head}{dumps(load_json(data))}{tail}\n" for _, head, data, tail in chunk]
                yield chunk[0][0], chunk[-1][0], lines


def _chunks(iterable, size):
    iterator = iter(iterable)
    while chunk := list(islice(iterator, size)):
        yield chunk


def event_lines(queryset, *, in_database=None):
    """``(first sequence, last sequence, lines)`` for each block of ``BATCH`` events; PostgreSQL
    writes most of each line itself unless ``in_database`` is False."""
    if in_database is None:
        in_database = connections[queryset.db].vendor == "postgresql"
    return _lines_in_postgresql(queryset) if in_database else _lines_in_python(queryset)


# --- the exports ----------------------------------------------------------------------------------


def event_records(queryset):
    """``queryset``'s events as the bytes of a JSONL export's event lines, exactly as it writes them."""
    return b"".join("".join(lines).encode("utf-8") for _, _, lines in event_lines(queryset))


def checkpoint_record(checkpoint):
    """One checkpoint as the bytes of a JSONL export's checkpoint line."""
    return (_encoder.encode({"record": "checkpoint", **checkpoint.as_chain_dict()}) + "\n").encode("utf-8")


def signed_export(queryset, *, actor, filters):
    """A whole JSONL export of ``queryset`` as bytes, not contiguous (a selection of events): each
    event's line, the checkpoints among them, and the signed manifest. The caller checked access and
    records the export in its own event (an evidence pack's)."""
    return b"".join(_jsonl(queryset, actor=actor, filters=filters, contiguous=False))



def _jsonl(queryset, *, actor, filters, contiguous):
    digest = hashlib.sha256()
    first = last = None
    count = 0
    dumps = _encoder.encode
    buffer = []
    for block_first, block_last, lines in event_lines(queryset):
        block = "".join(lines).encode("utf-8")
        digest.update(block)
        count += len(lines)
        first = block_first if first is None else first
        last = block_last
        yield block
    needed = set()
    if first is not None:
        for checkpoint in AuditCheckpoint.objects.filter(sequence__gte=first, sequence__lte=last).order_by("id"):
            line = (dumps({"record": "checkpoint", **checkpoint.as_chain_dict()}) + "\n").encode("utf-8")
            digest.update(line)
            buffer.append(line)
            needed.add(checkpoint.key_id)
    head = AuditEvent.objects.order_by("-sequence").values_list("hash", flat=True).first()
    signing_key = signing.current()
    ring = keyring.load()  # after the signer: a rotation between the two leaves it listed as retired
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
        # The signer, and every key its checkpoints need (key id: public key), so an export spanning
        # a key rotation says which keys to pin; a key the ring does not know is left out, and its
        # checkpoints then fail verification naming its id.
        "public_key": signing_key.public_b64,
        "key_id": signing_key.key_id,
        "keys": {
            key_id: ring.public_b64(key_id)
            for key_id in sorted(needed | {signing_key.key_id})
            if ring.public_b64(key_id) is not None
        },
    }
    manifest["signature"] = signing_key.sign(canonical(manifest))
    buffer.append((dumps({"record": "manifest", **manifest}) + "\n").encode("utf-8"))
    yield b"".join(buffer)


def _csv(queryset):
    """The events as CSV rows: PostgreSQL writes them (``COPY ... CSV``), Python elsewhere."""
    if connections[queryset.db].vendor == "postgresql":
        return _csv_in_postgresql(queryset)
    return _csv_in_python(queryset)


def _csv_header():
    out = io.StringIO()
    csv.writer(out).writerow(CHAIN_COLUMNS)
    return out.getvalue().encode("utf-8")


def _csv_in_python(queryset):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CHAIN_COLUMNS)
    rows = 0
    for event in iter_chain_rows(queryset, chunk_size=BATCH):
        event["data"] = json.dumps(event["data"], ensure_ascii=False, sort_keys=True)
        writer.writerow([safe_cell(event[c]) if event[c] is not None else "" for c in CHAIN_COLUMNS])
        rows += 1
        if rows % BATCH == 0:
            yield out.getvalue().encode("utf-8")
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode("utf-8")


# A text cell a spreadsheet would read as a formula gets a leading quote (audit.spreadsheet.safe_cell,
# written in SQL): after any leading quotes, its first character is one of = + - @ TAB CR. Most cells
# start with none of these nor a quote, and the first test (one character's code) settles them.
_FORMULA_CODES = "61, 43, 45, 64, 9, 13"  # = + - @ TAB CR
_PG_SAFE_CELL = (
    "CASE WHEN ascii({0}) NOT IN (" + _FORMULA_CODES + ", 39) THEN {0} "
    "WHEN ascii(ltrim({0}, '''')) IN (" + _FORMULA_CODES + ") THEN '''' || {0} ELSE {0} END"
)
CSV_CHUNK = 1 << 20  # bytes per block written to the response
# Columns only the server writes, from a fixed alphabet (a kind, an action's code, hex hashes): no
# formula can start them, so PostgreSQL writes them as they are.
_SERVER_WRITTEN = ("actor_type", "action", "prev_hash", "hash")


def _pg_csv(connection, column):
    """SQL writing one column's CSV cell as text (NULL stays NULL: an empty cell)."""
    quoted = f"{connection.ops.quote_name(AuditEvent._meta.db_table)}.{connection.ops.quote_name(column)}"
    if column in ("sequence", "actor_id", "data"):  # numbers, and JSON text, never start a formula
        return f"{quoted}::text"
    if column in _SERVER_WRITTEN:
        return quoted
    if column == "occurred_at":
        return PG_ISO % quoted
    return _PG_SAFE_CELL.format(quoted)


def _csv_in_postgresql(queryset):
    """PostgreSQL builds every row (``COPY ... TO STDOUT WITH (FORMAT csv)``); Python only passes
    blocks of them on, so a row costs about what COPY costs. ``data`` is PostgreSQL's JSON text
    (keys in jsonb's order); the JSONL export is the one to verify."""
    connection = connections[queryset.db]
    cells = {
        f"csv_{index}": RawSQL(_pg_csv(connection, name), (), output_field=TextField())  # noqa: S611 - column names
        for index, name in enumerate(CHAIN_COLUMNS)
    }
    rows = queryset.order_by("sequence").annotate(**cells).values_list(*cells)
    statement, params = rows.query.sql_with_params()
    yield _csv_header()
    with transaction.atomic(using=queryset.db), connection.cursor() as cursor:
        with cursor.copy(f"COPY ({statement}) TO STDOUT WITH (FORMAT csv)", params) as copy:
            block, size = [], 0
            for data in copy:
                block.append(data)
                size += len(data)
                if size >= CSV_CHUNK:
                    yield b"".join(block)
                    block, size = [], 0
            if block:
                yield b"".join(block)
