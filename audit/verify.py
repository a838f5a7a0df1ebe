"""Verify an audit trail: the hash chain, the signed checkpoints, and (for files) the manifest.

Standard library only. ``python -m audit.verify EXPORT.jsonl [--public-key KEY]`` checks an
export without the app; ``manage.py verify_audit`` feeds the same ``Verifier`` from the database.
Exit 0 when intact; 1 naming the first bad event and what is wrong with it.
"""

import argparse
import base64
import datetime
import hashlib
import json
import sys
from dataclasses import dataclass, field

from . import ed25519
from .chain import GENESIS, canonical, checkpoint_hash, checkpoint_payload, event_hash


@dataclass
class Problem:
    sequence: int | None
    kind: str  # changed, missing, inserted, reordered, checkpoint, manifest, stale, sink
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
    signed manifest covers the set.
    """

    def __init__(self, *, public_key=None, contiguous=True, start_prev_hash=GENESIS, watch=None):
        self.public_key = public_key
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
            if self.public_key is not None:
                try:
                    signature = base64.b64decode(cp["signature"])
                except ValueError:
                    signature = b""
                if not ed25519.verify(self.public_key, checkpoint_payload(cp), signature):
                    self._problem(sequence, "checkpoint", "the checkpoint's signature does not verify")
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
    raw = base64.b64decode(value.strip())
    if len(raw) != 32:
        raise SystemExit("the public key must be 32 bytes, base64-encoded (manage.py audit_public_key)")
    return raw


def _records(path):
    """``(line number, raw bytes, parsed line)`` of each line; raises ValueError naming a bad line."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                yield number, raw, json.loads(raw)
            except ValueError as exc:
                raise ValueError(f"line {number} is not valid JSON") from exc


def verify_file(path, *, public_key=None):
    """Verify a JSONL export: events, the checkpoints it carries, and its signed manifest.

    Two streaming passes, so memory stays flat however long the file: the first reads the
    checkpoints and the manifest, the second checks every event against them."""
    checkpoints, manifest, first_event = [], None, None
    try:
        for _, _raw, line in _records(path):
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
    contiguous = True if manifest is None else bool(manifest.get("contiguous", True))
    key = public_key or (manifest or {}).get("public_key")
    verifier = Verifier(
        public_key=_load_public_key(key) if key else None,
        contiguous=contiguous,
        start_prev_hash=first_event["prev_hash"] if first_event else GENESIS,
        watch={cp["sequence"] for cp in checkpoints},
    )
    digest = hashlib.sha256()
    for _, raw, line in _records(path):
        if line.get("record") == "manifest":
            continue
        digest.update(raw.rstrip(b"\n") + b"\n")
        if line.get("record") != "checkpoint":
            verifier.event(line)
    verifier.checkpoints(checkpoints)
    report = verifier.report
    if manifest is None:
        report.problems.append(Problem(None, "manifest", "the file has no manifest line (was it cut short?)"))
        return report
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
    if key:
        body = {k: v for k, v in manifest.items() if k not in ("signature", "record")}
        try:
            signature = base64.b64decode(manifest.get("signature", ""))
        except ValueError:
            signature = b""
        if not ed25519.verify(_load_public_key(key), canonical(body), signature):
            report.problems.append(Problem(None, "manifest", "the manifest's signature does not verify"))
    if public_key and manifest.get("public_key") and manifest["public_key"] != public_key.strip():
        report.problems.append(Problem(None, "manifest", "the export was signed with another key"))
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m audit.verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("file", help="a JSONL export of the audit trail")
    parser.add_argument(
        "--public-key",
        help="base64 Ed25519 public key to trust (default: the one in the file; "
        "pass your own copy to rule out a re-signed file)",
    )
    args = parser.parse_args(argv)
    try:
        report = verify_file(args.file, public_key=args.public_key)
    except OSError as exc:
        print(f"cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    for problem in report.problems[1:]:
        print(f"  also: {problem}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
