"""Building a deploy's evidence pack: one ZIP that an auditor checks offline with
``python -m audit.verify PACK.zip --public-key KEY`` (or ``promptledger verify``).

The pack holds the JSON sections (``risk.evidence.sections``), a printable ``report.html`` of them,
the request's audit events as a signed JSONL export (``audit/events.jsonl``) with the checkpoint that
first covered the last of them (``audit/checkpoint.json``; signed now when none covers it yet), and
``manifest.json``, the sha256 and size of every one of those files. The manifest is tied into the
chain: building the pack records ``evidence_pack.exported`` holding the manifest's sha256, in a
change that signs a checkpoint of that very event; both go in ``seal.jsonl``. Changing any byte of
any file, the manifest or the seal, or adding or removing a file, fails the verification.
"""

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass

from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from approvals import selectors as approvals_selectors
from approvals.models import DeployRequest
from audit import keyring, signing
from audit.chain import iso
from audit.export import checkpoint_record, event_records, signed_export
from audit.models import AuditCheckpoint, AuditEvent
from audit.services import write_checkpoint
from audit.transactions import change, retry_transient
from core import access, vocabulary
from core.errors import Conflict

from .. import events
from . import sections

FORMAT, FORMAT_VERSION = "promptledger-evidence-pack", 1
VERIFY = "python -m audit.verify {name} --public-key KEY"
WENT_LIVE = ("deploy_request.deployed", "deploy_request.break_glass")


@dataclass(frozen=True)
class EvidencePack:
    filename: str
    content: bytes
    manifest_sha256: str
    sealed_at: int  # the sequence of its evidence_pack.exported event


def unavailable_reason(dr):
    """Why ``dr`` has no evidence pack (a sentence), or "" when it has one: only a version that went
    live (a deploy, a rollback, a break-glass rollback) has one. The page's button asks the same."""
    if dr.kind == DeployRequest.TIER_CHANGE:
        return "a tier change puts no version live; its request page and audit events are its record"
    if dr.status != DeployRequest.DEPLOYED:
        return f"the request is {dr.status}, not deployed: an evidence pack documents a deploy"
    return ""


def request_events(dr, run_ids):
    """The audit events of the request, from its opening to its deploy: every event about it, the
    prompt's events between its first and its deploy (the pointer move, the gate's verdict), and those
    of the eval runs its gate used. All are the prompt's team's, so whoever may read them may have them."""
    own = AuditEvent.objects.filter(target_type="deploy_request", target_id=str(dr.pk)).exclude(
        action="evidence_pack.exported"  # earlier packs: each is sealed in its own pack, not in the next
    )
    span = own.order_by("sequence").values_list("sequence", flat=True)
    went_live = own.filter(action__in=WENT_LIVE).order_by("sequence").values_list("sequence", flat=True)
    first, last = span.first(), went_live.first() or span.last()
    window = Q(prompt=dr.prompt.slug, sequence__gte=first, sequence__lte=last) if first else Q(pk__in=[])
    runs = Q(target_type="eval_run", target_id__in=[str(pk) for pk in run_ids])
    return AuditEvent.objects.filter(Q(pk__in=own.values("pk")) | window | runs).order_by("sequence")


def _covering_checkpoint(last_sequence):
    """The first signed checkpoint at or after ``last_sequence``; signs one now when none does yet."""
    found = AuditCheckpoint.objects.filter(sequence__gte=last_sequence).order_by("id").first()
    return found if found is not None else AuditCheckpoint.objects.get(pk=write_checkpoint().pk)


def _files(actor, dr):
    deployed = AuditEvent.objects.filter(
        target_type="deploy_request", target_id=str(dr.pk), action__in=WENT_LIVE
    ).first()
    parts = {
        "request": sections.request_section(dr),
        "version": sections.version_section(dr),
        "policy": sections.policy_section(dr),
        "decisions": sections.decisions_section(dr),
        "gate": sections.gate_section(dr, actor=actor, deployed_event=deployed),
        "model": sections.model_section(dr),
    }
    run_ids = [run["id"] for run in parts["gate"]["runs"]]
    queryset = request_events(dr, run_ids)
    last = queryset.values_list("sequence", flat=True).last()
    covering = _covering_checkpoint(last or 0)
    events_jsonl = signed_export(queryset, actor=actor, filters={"deploy_request": str(dr.pk)})
    timeline = [
        {"sequence": e.sequence, "at": iso(e.occurred_at), "who": e.actor_username or e.actor_type,
         "action": e.action, "label": vocabulary.label(e.action), "target": f"{e.target_type} {e.target_id}".strip()}
        for e in queryset
    ]
    files = {f"evidence/{name}.json": sections.as_json(value) for name, value in parts.items()}
    files["audit/events.jsonl"] = events_jsonl
    files["audit/checkpoint.json"] = sections.as_json(covering.as_chain_dict())
    policy = parts["policy"]
    extra = {"variables": parts["version"]["version"]["variables"], "model": parts["version"]["version"]["model"]}
    files["report.html"] = render_to_string("risk/evidence/report.html", {
        **parts, "timeline": timeline, "covering": covering, "generated_by": actor.username,
        "policy_rows": [("When opened", policy["opened_under"]), ("At the deploy", policy["in_force_at_deploy"]),
                        ("Now", policy["in_force_now"])],
        "version_extra": json.dumps(extra, indent=2, sort_keys=True, ensure_ascii=False),
        "generated_at": iso(timezone.now()), "verify": VERIFY.format(name=f"evidence-request-{dr.pk}.zip"),
        "public_key": signing.public_key_b64(),
    }).encode("utf-8")
    return files, covering


def _manifest(actor, dr, files, covering):
    key = signing.current()
    ring = keyring.load()
    needed = {key.key_id, covering.key_id}
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "deploy_request": dr.pk, "prompt": dr.prompt.slug,
        "version": dr.version.number, "environment": dr.environment.slug,
        "generated_at": iso(timezone.now()), "generated_by": actor.username,
        "files": {
            name: {"sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content)}
            for name, content in sorted(files.items())
        },
        # Every key the pack's signatures need, by id, so an auditor knows which to pin.
        "keys": {key_id: ring.public_b64(key_id) for key_id in sorted(needed) if ring.public_b64(key_id)},
        "verify": VERIFY.format(name=f"evidence-request-{dr.pk}.zip"),
    }


def _zip(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            info = zipfile.ZipInfo(name, date_time=timezone.now().utctimetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue()


@retry_transient
def build_evidence_pack(*, actor, request_id):
    """The evidence pack of deploy request ``request_id``, for the prompt's team, compliance and
    admins (``evidence_pack.export``; 404 for who cannot see the request, 409 ``not_deployed`` for a
    request that put nothing live). Recording ``evidence_pack.exported`` seals the manifest into the
    chain, with a checkpoint of that event signed in the same transaction."""
    dr = approvals_selectors.get_request(actor, request_id)
    access.require(actor, "evidence_pack.export", team=dr.prompt.team)
    reason = unavailable_reason(dr)
    if reason:
        raise Conflict(f"no evidence pack for request #{dr.pk}: {reason}", code="not_deployed")
    files, covering = _files(actor, dr)
    manifest = sections.as_json(_manifest(actor, dr, files, covering))
    digest = hashlib.sha256(manifest).hexdigest()
    with change(checkpoint=True):
        sealed = events.evidence_pack_exported(actor, dr, manifest_sha256=digest, files=len(files))
    seal_checkpoint = AuditCheckpoint.objects.filter(sequence=sealed.sequence).order_by("id").first()
    seal = event_records(AuditEvent.objects.filter(pk=sealed.pk)) + checkpoint_record(seal_checkpoint)
    content = _zip({"manifest.json": manifest, "seal.jsonl": seal, **files})
    return EvidencePack(f"evidence-request-{dr.pk}.zip", content, digest, sealed.sequence)
