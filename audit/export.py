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
from django.utils import timezone

from core import access

from . import events, keyring, signing
from .chain import canonical, iso
from .checks import CHAIN_COLUMNS, PG_ISO, iter_chain_rows, iter_chain_values
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


_HEAD = b'{"record":"event","sequence":'  # every line PostgreSQL writes starts so
_DATA_KEY, _AFTER_DATA = b',"data":', f',"{CHAIN_COLUMNS[CHAIN_COLUMNS.index("data") + 1]}":'.encode()


def _blocks_in_postgresql(queryset):
    """``(first, last, count, bytes)`` per block of ``BATCH`` events. PostgreSQL writes each line
    with ``row_to_json`` (what a JSON-producing COPY costs it, and no more) and sends it as raw CSV
    whose quote and delimiter (``\\x01``, ``\\x02``) never occur in JSON text, so nothing in a line is
    quoted or escaped and a row is its line, bytes as they go out. Python re-encodes only the
    ``data`` value, which ``row_to_json`` leaves in jsonb's own text (spaces after separators, its
    forms of numbers).

    Finding that value is two ``bytes.index`` calls: ``,"data":`` and ``,"request_id":`` (the next
    column) with an unquoted ``"`` right after a comma occur in a line only as its own separators,
    because inside a JSON string every ``"`` is escaped, and jsonb's text puts a space after every
    comma of its own."""
    connection = connections[queryset.db]
    quote = connection.ops.quote_name
    table = quote(AuditEvent._meta.db_table)
    named = {"occurred_at": PG_ISO % f"{table}.{quote('occurred_at')}"}  # chain.iso, as text
    inner = queryset.order_by("sequence").annotate(
        **{f"pl_{name}": RawSQL(named.get(name, f"{table}.{quote(name)}"), (),  # noqa: S611 - column names
                                output_field=TextField())  # only the SQL is used; row_to_json sees the real types
           for name in CHAIN_COLUMNS}
    ).values_list(*(f"pl_{name}" for name in CHAIN_COLUMNS))
    statement, params = inner.query.sql_with_params()
    renamed = ", ".join(f"e.{quote('pl_' + name)} AS {quote(name)}" for name in CHAIN_COLUMNS)
    copy_sql = (f"COPY (SELECT row_to_json(x)::text FROM (SELECT 'event' AS record, {renamed} "  # noqa: S608 - ours
                f"FROM ({statement}) e) x) TO STDOUT WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')")
    dumps, loads = _compact_json(), json.loads
    skip, key = len(_HEAD), len(_DATA_KEY)
    # COPY streams rows while Python writes lines from the ones already here (a cursor's FETCH
    # leaves the database idle meanwhile); the transaction holds one snapshot, and ends with it.
    with transaction.atomic(using=queryset.db), connection.cursor() as cursor:
        with cursor.copy(copy_sql, params) as copy:
            parts, count, first = [], 0, None
            for row in copy:  # one row (its line and "\n") per message
                line = bytes(row)
                start = line.index(_DATA_KEY, skip) + key
                end = line.index(_AFTER_DATA, start)
                parts += (line[:start], dumps(loads(line[start:end])).encode(), line[end:])
                count += 1
                if first is None:
                    first = line
                if count == BATCH:
                    yield _sequence(first), _sequence(line), count, b"".join(parts)
                    parts, count, first = [], 0, None
            if count:
                yield _sequence(first), _sequence(line), count, b"".join(parts)


def _sequence(line):
    return int(line[len(_HEAD):line.index(b",", len(_HEAD))])


def _blocks_in_python(queryset):
    for first, last, lines in _lines_in_python(queryset):
        yield first, last, len(lines), "".join(lines).encode("utf-8")


def _chunks(iterable, size):
    iterator = iter(iterable)
    while chunk := list(islice(iterator, size)):
        yield chunk


def event_blocks(queryset, *, in_database=None):
    """``(first sequence, last sequence, count, bytes)`` for each block of ``BATCH`` events, the
    bytes exactly the JSONL export's event lines; PostgreSQL writes them (``row_to_json``) unless
    ``in_database`` is False."""
    if in_database is None:
        in_database = connections[queryset.db].vendor == "postgresql"
    return _blocks_in_postgresql(queryset) if in_database else _blocks_in_python(queryset)


def event_lines(queryset, *, in_database=None):
    """``(first sequence, last sequence, lines)`` for each block of ``BATCH`` events, as text."""
    if in_database is False or (in_database is None and connections[queryset.db].vendor != "postgresql"):
        yield from _lines_in_python(queryset)
        return
    for first, last, _, block in _blocks_in_postgresql(queryset):
        yield first, last, [f"{line}\n" for line in block.decode("utf-8").split("\n")[:-1]]


# --- the exports ----------------------------------------------------------------------------------


def event_records(queryset):
    """``queryset``'s events as the bytes of a JSONL export's event lines, exactly as it writes them."""
    return b"".join(block for _, _, _, block in event_blocks(queryset))


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
    for block_first, block_last, lines, block in event_blocks(queryset):
        digest.update(block)
        count += lines
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
