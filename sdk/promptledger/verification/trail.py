"""Verify an audit trail: the hash chain, the signed checkpoints, and (for export files) the signed
manifest. Standard library only.

``Verifier`` is fed events and checkpoints (by ``verify_file`` from a JSONL export, by the server's
``manage.py verify_audit`` from the database, by ``verification.pack`` from an evidence pack).
Each checkpoint names the key that signed it by id (the first 16 hex digits of the sha256 of the
raw public key), and is checked with that key only: after a key rotation an export holds
checkpoints of more than one key, and the auditor passes ``--public-key`` once for each
(docs/audit-keys.md).
"""

import base64
import datetime
import hashlib
import json
from dataclasses import dataclass, field

from . import ed25519
from .chain import GENESIS, canonical, checkpoint_hash, checkpoint_payload, event_hash

PINNED_HINT = (
    "not among the keys given with --public-key: pass its public key with --public-key too "
    "(manage.py audit_public_key lists every key with its id)"
)


def key_id_of(public_key):
    """The id of a raw 32-byte public key (``audit.signing.key_id_of`` computes the same)."""
    return hashlib.sha256(public_key).hexdigest()[:16]


@dataclass
class Problem:
    sequence: int | None
    kind: str  # changed, missing, inserted, reordered, checkpoint, manifest, stale, sink, keys
    message: str

    def __str__(self):
        where = f"event {self.sequence}: " if self.sequence is not None else ""
        return f"{where}{self.kind}: {self.message}"


@dataclass
class Report:
    first: int | None = None
    last: int | None = None
    count: int = 0
    head_hash: str = GENESIS
    checkpoints: int = 0
    last_checkpoint_sequence: int | None = None
    last_checkpoint_at: str | None = None
    problems: list = field(default_factory=list)
    # The keys the verdict rests on ({key id: base64 public key}) and whether the auditor pinned
    # them (--public-key) or they came from the file itself (which proves consistency, not origin).
    trusted_keys: dict = field(default_factory=dict)
    pinned: bool = False

    @property
    def ok(self):
        return not self.problems

    def summary(self):
        if self.ok:
            span = f"events {self.first}..{self.last}" if self.count else "no events"
            signed = (
                f"; signed up to event {self.last_checkpoint_sequence} at {self.last_checkpoint_at}"
                if self.last_checkpoint_sequence is not None
                else "; no signed checkpoint"
            )
            return f"OK: {span} ({self.count} events, {self.checkpoints} checkpoints){signed}"
        return f"BROKEN at {self.problems[0]}"


def _parse_time(value):
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


class Verifier:
    """Feed events in sequence order with ``event()``, then checkpoints, then ``finish()``.

    ``contiguous`` is False for filtered exports: each event's own hash is still checked, and the
    signed manifest covers the set. ``keys`` (``{key id: raw public key}``) are the keys trusted to
    sign checkpoints, each checkpoint checked with the key its ``key_id`` names; ``public_key`` is
    one such key; with neither, signatures are not checked. ``unknown_key_hint`` ends the problem
    of a checkpoint signed by a key not trusted: why it is not, and where to add it.
    """

    def __init__(
        self, *, public_key=None, keys=None, contiguous=True, start_prev_hash=GENESIS, watch=None,
        unknown_key_hint=PINNED_HINT,
    ):
        if public_key is not None:
            keys = {**(keys or {}), key_id_of(public_key): public_key}
        self.keys = keys
        self.unknown_key_hint = unknown_key_hint
        # Hashes kept for the checkpoint comparison: only at ``watch`` sequences when given, so a
        # million-event verification holds a handful of hashes, not all of them.
        self.watch = watch
        self.contiguous = contiguous
        self.report = Report()
        self.prev_hash = start_prev_hash
        self.expected = None
        self.hashes = {}
        self.pending = None  # (sequence, hash) of the last event, to classify insertions

    def _problem(self, sequence, kind, message):
        self.report.problems.append(Problem(sequence, kind, message))

    def event(self, event):
        report = self.report
        sequence = event["sequence"]
        stored = event["hash"]
        report.count += 1
        report.first = sequence if report.first is None else report.first
        if self.contiguous:
            if self.expected is None:
                self.expected = 1 if self.prev_hash == GENESIS else sequence
            if sequence > self.expected:
                missing = f"{self.expected}" if sequence - self.expected == 1 else f"{self.expected}..{sequence - 1}"
                self._problem(self.expected, "missing", f"event {missing} is missing (next found is {sequence})")
            elif sequence < self.expected:
                self._problem(
                    sequence, "reordered", f"found after event {self.expected - 1}; out of order or duplicated"
                )
        recomputed = event_hash(event["prev_hash"], event)
        if recomputed != stored:
            moved = dict(event, sequence=sequence - 1)
            if event_hash(event["prev_hash"], moved) == stored:
                self._problem(
                    sequence - 1, "inserted", f"an event was inserted at {sequence - 1}; later events were renumbered"
                )
            else:
                self._problem(sequence, "changed", "its content does not match its hash")
        elif self.contiguous and event["prev_hash"] != self.prev_hash and not report.problems:
            self._problem(
                sequence,
                "inserted",
                "its prev_hash does not link to the event before it: an event was inserted or removed here",
            )
        self.prev_hash = stored
        if self.watch is None or sequence in self.watch:
            self.hashes[sequence] = stored
        report.last = sequence
        report.head_hash = stored
        self.expected = sequence + 1

    def checkpoints(self, checkpoints, *, check_heads=True):
        previous = None
        for cp in checkpoints:
            self.report.checkpoints += 1
            sequence = cp["sequence"]
            if self.keys is not None:
                key = self.keys.get(cp.get("key_id"))
                if key is None:
                    self._problem(
                        sequence,
                        "checkpoint",
                        f"the checkpoint is signed by key id {cp.get('key_id')}, which is {self.unknown_key_hint}",
                    )
                    previous = cp  # still the link the next one should name: one problem, not two
                    continue
                try:
                    signature = base64.b64decode(cp["signature"])
                except ValueError:
                    signature = b""
                if not ed25519.verify(key, checkpoint_payload(cp), signature):
                    self._problem(
                        sequence, "checkpoint", f"the checkpoint's signature does not verify with key id {cp['key_id']}"
                    )
                    previous = cp
                    continue
            if checkpoint_hash(cp) != cp["checkpoint_hash"]:
                self._problem(sequence, "checkpoint", "the checkpoint's hash does not match its content")
            if previous is not None and cp["prev_checkpoint_hash"] != previous["checkpoint_hash"]:
                self._problem(sequence, "checkpoint", "the checkpoint does not link to the one before it")
            if check_heads and sequence in self.hashes and self.hashes[sequence] != cp["head_hash"]:
                self._problem(
                    sequence,
                    "changed",
                    f"the chain up to event {sequence} was rewritten: its hash differs from the signed checkpoint",
                )
            previous = cp
            self.report.last_checkpoint_sequence = sequence
            self.report.last_checkpoint_at = cp["created_at"]

    def stale(self, *, now, max_age_seconds):
        at = self.report.last_checkpoint_at
        if at is None:
            if self.report.count:
                self._problem(None, "stale", "there is no signed checkpoint")
            return
        age = (now - _parse_time(at)).total_seconds()
        if age > max_age_seconds:
            self._problem(
                None,
                "stale",
                f"the newest checkpoint is {int(age)} s old; at most {max_age_seconds} s is allowed "
                "(newest events or checkpoints may have been deleted, or the heartbeat is not running)",
            )

    def sink(self, sink_checkpoints, db_hashes):
        """Checkpoints kept outside the database that the database no longer has."""
        for cp in sink_checkpoints:
            if cp["checkpoint_hash"] not in db_hashes:
                self._problem(
                    cp["sequence"],
                    "sink",
                    "the checkpoint sink holds a checkpoint the database lacks: checkpoints were deleted",
                )
                return


def _load_public_key(value):
    if value is None:
        return None
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise SystemExit("the public key must be 32 bytes, base64-encoded (manage.py audit_public_key)")
    return raw


def _pinned(public_key):
    """``{key id: raw key}`` of the keys given (one base64 text, or a list of them), or None."""
    if not public_key:
        return None
    texts = [public_key] if isinstance(public_key, str) else list(public_key)
    return {key_id_of(raw): raw for raw in map(_load_public_key, texts)}


def _manifest_keys(manifest, problems):
    """``{key id: raw key}`` the manifest lists (``keys``, or the single ``key_id``/``public_key`` of
    an export made before rotation existed); an entry whose key does not hash to its id is a problem."""
    listed = dict(manifest.get("keys") or {})
    if manifest.get("key_id") and manifest.get("public_key"):
        listed.setdefault(manifest["key_id"], manifest["public_key"])
    keys = {}
    for key_id, text in listed.items():
        try:
            raw = base64.b64decode(str(text), validate=True)
        except ValueError:
            raw = b""
        if len(raw) != 32 or key_id_of(raw) != key_id:
            problems.append(
                Problem(None, "manifest", f"the manifest lists key id {key_id} with a key that is not its own")
            )
            continue
        keys[key_id] = raw
    return keys


def _records(open_lines):
    """``(line number, raw bytes, parsed line)`` of each line; raises ValueError naming a bad line.
    ``open_lines()`` returns a fresh iterable of the file's raw lines (it is read twice)."""
    for number, raw in enumerate(open_lines(), start=1):
        try:
            yield number, raw, json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"line {number} is not valid JSON") from exc


def _file_lines(path):
    def open_lines():
        with open(path, "rb") as handle:
            yield from handle

    return open_lines


def _key_texts(keys):
    return {key_id: base64.b64encode(raw).decode() for key_id, raw in (keys or {}).items()}


def verify_file(path, *, public_key=None, stream_copy=False):
    """Verify a JSONL export file (see ``verify_lines``)."""
    return verify_lines(_file_lines(path), public_key=public_key, stream_copy=stream_copy)


def verify_lines(open_lines, *, public_key=None, stream_copy=False):
    """Verify a JSONL export: events, the checkpoints it carries, and its signed manifest.

    ``public_key`` is the key (base64) or list of keys the auditor trusts: exactly those, each
    checkpoint and the manifest checked with the one its key id names. Without any, the keys the
    manifest lists are used, which proves the file consistent but not who signed it.

    ``stream_copy``: the lines are what a SIEM received from an audit stream (event lines, no
    manifest): every event's hash and each link to the event before it are checked, from the first
    event's ``prev_hash``; nothing signed vouches for its last event, so compare that hash with the
    server's (docs/siem.md).

    Two streaming passes, so memory stays flat however long the file: the first reads the
    checkpoints and the manifest, the second checks every event against them."""
    checkpoints, manifest, first_event = [], None, None
    try:
        for _, _raw, line in _records(open_lines):
            kind = line.get("record")
            if kind == "manifest":
                manifest = line
            elif kind == "checkpoint":
                checkpoints.append(line)
            elif first_event is None:
                first_event = line
    except ValueError as exc:
        report = Report()
        report.problems.append(Problem(None, "changed", str(exc)))
        return report
    pinned = _pinned(public_key)
    key_problems = []
    listed = _manifest_keys(manifest, key_problems) if manifest is not None else {}
    keys = pinned if pinned is not None else (listed or None)
    contiguous = True if manifest is None else bool(manifest.get("contiguous", True))
    verifier = Verifier(
        keys=keys,
        contiguous=contiguous,
        start_prev_hash=first_event["prev_hash"] if first_event else GENESIS,
        watch={cp["sequence"] for cp in checkpoints},
        unknown_key_hint=PINNED_HINT if pinned is not None else "not listed in the export's manifest",
    )
    digest = hashlib.sha256()
    for _, raw, line in _records(open_lines):
        if line.get("record") == "manifest":
            continue
        digest.update(raw.rstrip(b"\n") + b"\n")
        if line.get("record") != "checkpoint":
            verifier.event(line)
    verifier.checkpoints(checkpoints)
    report = verifier.report
    report.trusted_keys, report.pinned = _key_texts(keys), pinned is not None
    if manifest is None:
        if not stream_copy:
            report.problems.append(Problem(None, "manifest", "the file has no manifest line (was it cut short?)"))
        return report
    report.problems.extend(key_problems)
    expected = {
        "count": report.count,
        "first_sequence": report.first,
        "last_sequence": report.last,
        "content_sha256": digest.hexdigest(),
    }
    for name, value in expected.items():
        if manifest.get(name) != value:
            report.problems.append(
                Problem(
                    None,
                    "manifest",
                    f"{name} is {value!r} but the manifest says {manifest.get(name)!r}: "
                    "lines were removed, added or changed",
                )
            )
            break
    if keys is not None:
        _check_manifest_signature(manifest, keys, pinned is not None, report)
    return report


def _check_manifest_signature(manifest, keys, pinned, report):
    signer = manifest.get("key_id")
    key = keys.get(signer)
    if key is None:
        report.problems.append(
            Problem(
                None,
                "manifest",
                f"the manifest is signed by key id {signer}, which is "
                + (PINNED_HINT if pinned else "not listed in the manifest"),
            )
        )
        return
    body = {k: v for k, v in manifest.items() if k not in ("signature", "record")}
    try:
        signature = base64.b64decode(manifest.get("signature", ""))
    except ValueError:
        signature = b""
    if not ed25519.verify(key, canonical(body), signature):
        report.problems.append(Problem(None, "manifest", "the manifest's signature does not verify"))
    if pinned and manifest.get("public_key") and manifest["public_key"] != base64.b64encode(key).decode():
        report.problems.append(Problem(None, "manifest", "the export was signed with another key"))
