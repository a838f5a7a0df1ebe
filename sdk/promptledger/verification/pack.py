"""Verify an evidence pack (the ZIP of one deploy, ``GET /api/v1/deploy-requests/{id}/evidence``) with
the standard library alone.

What is checked, in this order, each failure naming the file it is about:

1. the ZIP's members: ``manifest.json`` and ``seal.jsonl`` present, no name twice, every other member
   listed in the manifest (an added file fails) and every listed file present (a removed one fails);
2. ``seal.jsonl``: the ``evidence_pack.exported`` audit event re-hashes to its own hash, and the
   checkpoint beside it signs exactly that event (its head hash and sequence) with a trusted key;
3. ``manifest.json``: its sha256 is the ``manifest_sha256`` the sealed event recorded;
4. every listed file: its sha256 and size are the manifest's;
5. ``audit/events.jsonl`` (an audit export of the request's events, with its own signed manifest line)
   passes the export verification, and ``audit/checkpoint.json``, the checkpoint that first covered
   the last of those events, is signed by a trusted key and does not come before them.

So one changed byte anywhere fails: in a listed file its hash, in the manifest the sealed hash, in the
seal its own hash or signature. Trusted keys are those pinned with ``--public-key``; without any, the
keys the pack lists, which proves the pack consistent but not who made it (the caller warns).
"""

import base64
import hashlib
import json
import zipfile
import zlib
from dataclasses import dataclass, field

from . import ed25519
from .chain import checkpoint_hash, checkpoint_payload, event_hash
from .trail import Problem, _pinned, key_id_of, verify_lines

FORMAT = "promptledger-evidence-pack"
MANIFEST, SEAL = "manifest.json", "seal.jsonl"
EVENTS, COVERING = "audit/events.jsonl", "audit/checkpoint.json"
SEALED_ACTION = "evidence_pack.exported"


def is_pack(path):
    """Whether ``path`` is a ZIP (an evidence pack) rather than a JSONL export."""
    with open(path, "rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


@dataclass
class PackReport:
    deploy_request: object = None
    files: int = 0
    sealed_at: int | None = None
    covered_by: int | None = None
    events: str = ""
    problems: list = field(default_factory=list)
    trusted_keys: dict = field(default_factory=dict)
    pinned: bool = False

    @property
    def ok(self):
        return not self.problems

    def problem(self, name, message):
        self.problems.append(Problem(None, name, message))

    def summary(self):
        if not self.ok:
            return f"BROKEN at {self.problems[0]}"
        return (
            f"OK: evidence pack of deploy request #{self.deploy_request}: {self.files} files match the manifest; "
            f"the manifest is sealed by audit event {self.sealed_at} ({SEALED_ACTION}) and its signed checkpoint; "
            f"{EVENTS}: {self.events}; covered by the signed checkpoint at event {self.covered_by} ({COVERING})"
        )


def _read_members(archive, report):
    """``{name: bytes}`` of every member; a member that cannot be read (a changed byte in its
    compressed data fails its CRC) is a problem naming it."""
    names = [info.filename for info in archive.infolist()]
    for name in sorted({n for n in names if names.count(n) > 1}):
        report.problem(name, "the ZIP holds this name more than once")
    members = {}
    for name in dict.fromkeys(names):
        try:
            members[name] = archive.read(name)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            report.problem(name, f"cannot be read from the ZIP ({exc}): it was changed")
    return members


def _json(members, name, report):
    try:
        return json.loads(members[name])
    except (KeyError, ValueError) as exc:
        report.problem(name, f"is not valid JSON ({exc})" if name in members else "is missing from the pack")
        return None


def _listed_keys(manifest, report):
    keys = {}
    for key_id, text in dict(manifest.get("keys") or {}).items():
        try:
            raw = base64.b64decode(str(text), validate=True)
        except ValueError:
            raw = b""
        if len(raw) != 32 or key_id_of(raw) != key_id:
            report.problem(MANIFEST, f"lists key id {key_id} with a key that is not its own")
            continue
        keys[key_id] = raw
    return keys


def _check_checkpoint(name, cp, keys, report, *, pinned):
    """Signature (with the key its id names) and own hash of one checkpoint."""
    key = keys.get(cp.get("key_id"))
    if key is None:
        where = "not among the keys given with --public-key" if pinned else "not listed in manifest.json"
        report.problem(name, f"the checkpoint is signed by key id {cp.get('key_id')}, which is {where}")
        return False
    try:
        signature = base64.b64decode(cp.get("signature", ""))
    except ValueError:
        signature = b""
    if not ed25519.verify(key, checkpoint_payload(cp), signature):
        report.problem(name, f"the checkpoint's signature does not verify with key id {cp['key_id']}")
        return False
    if checkpoint_hash(cp) != cp.get("checkpoint_hash"):
        report.problem(name, "the checkpoint's hash does not match its content")
        return False
    return True


def _check_seal(members, manifest_bytes, manifest, keys, report, *, pinned):
    """The sealed export event and its checkpoint; True when the manifest is tied into the chain."""
    try:
        lines = [json.loads(line) for line in members[SEAL].splitlines() if line.strip()]
        event = next(line for line in lines if line.get("record") == "event")
        cp = next(line for line in lines if line.get("record") == "checkpoint")
    except (ValueError, StopIteration, AttributeError):
        report.problem(SEAL, "must hold the export's audit event and the checkpoint that signs it")
        return False
    if event.get("action") != SEALED_ACTION or event_hash(event.get("prev_hash", ""), event) != event.get("hash"):
        report.problem(SEAL, "the export's audit event does not match its hash: it was changed")
        return False
    if not _check_checkpoint(SEAL, cp, keys, report, pinned=pinned):
        return False
    if cp.get("sequence") != event["sequence"] or cp.get("head_hash") != event["hash"]:
        report.problem(SEAL, "the checkpoint does not sign the export's audit event")
        return False
    data = event.get("data") or {}
    if data.get("manifest_sha256") != hashlib.sha256(manifest_bytes).hexdigest():
        report.problem(MANIFEST, "its sha256 is not the one the signed audit event recorded: it was changed")
        return False
    if data.get("deploy_request") != manifest.get("deploy_request"):
        report.problem(MANIFEST, "names another deploy request than the signed audit event")
        return False
    report.sealed_at = event["sequence"]
    return True


def _check_files(members, manifest, report):
    files = manifest.get("files")
    if not isinstance(files, dict):
        report.problem(MANIFEST, "lists no files")
        return
    for name in sorted(set(members) - set(files) - {MANIFEST, SEAL}):
        report.problem(name, "is not listed in the manifest: it was added")
    for name, entry in sorted(files.items()):
        if name not in members:
            report.problem(name, "is listed in the manifest but missing from the pack: it was removed")
            continue
        content = members[name]
        if hashlib.sha256(content).hexdigest() != entry.get("sha256") or len(content) != entry.get("bytes"):
            report.problem(name, "its sha256 differs from the manifest's: it was changed")
    report.files = len(files)


def _check_audit_events(members, keys, report, *, public_key):
    if EVENTS not in members:
        return
    lines = members[EVENTS].splitlines(keepends=True)
    events = verify_lines(lambda: iter(lines), public_key=public_key)
    for problem in events.problems:
        report.problem(EVENTS, str(problem))
    report.events = events.summary()
    cp = _json(members, COVERING, report)
    if cp is None or not _check_checkpoint(COVERING, cp, keys, report, pinned=public_key is not None):
        return
    if events.last is not None and cp["sequence"] < events.last:
        report.problem(COVERING, f"the checkpoint (event {cp['sequence']}) does not cover event {events.last}")
    if report.sealed_at is not None and cp["sequence"] > report.sealed_at:
        report.problem(COVERING, "the checkpoint is newer than the pack's own seal")
    report.covered_by = cp["sequence"]


def verify_pack(path, *, public_key=None):
    """Verify the evidence pack at ``path``; ``public_key`` is the key (base64) or list of keys the
    auditor trusts. Returns a ``PackReport``."""
    report = PackReport()
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        report.problem(str(path), f"is not a readable ZIP ({exc})")
        return report
    with archive:
        members = _read_members(archive, report)
    for name in (MANIFEST, SEAL):
        if name not in members and not any(p.kind == name for p in report.problems):
            report.problem(name, "is missing from the pack")
    manifest = _json(members, MANIFEST, report) if MANIFEST in members else None
    if report.problems or not isinstance(manifest, dict):
        return report
    if manifest.get("format") != FORMAT:
        report.problem(MANIFEST, f"is not a {FORMAT} manifest")
        return report
    report.deploy_request = manifest.get("deploy_request")
    pinned = _pinned(public_key)
    keys = pinned if pinned is not None else _listed_keys(manifest, report)
    report.trusted_keys = {key_id: base64.b64encode(raw).decode() for key_id, raw in keys.items()}
    report.pinned = pinned is not None
    try:
        _check_seal(members, members[MANIFEST], manifest, keys, report, pinned=pinned is not None)
        _check_files(members, manifest, report)
        if not report.problems:
            _check_audit_events(members, keys, report, public_key=public_key)
    except (KeyError, TypeError, AttributeError) as exc:  # a field renamed or of the wrong type
        report.problem(MANIFEST if not report.problems else report.problems[0].kind, f"is malformed ({exc!r})")
    return report
