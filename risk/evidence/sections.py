"""What an evidence pack says about one deploy, as plain JSON-ready dicts, each read as it stood at
the deploy where the records allow: the request and its prompt, the version with its diff against
what was live, the tier policy in force, every decision with its signature, the gate evaluated with
the runs finished by the deploy, and the model's register entry with its reviews."""

import json

from approvals.models import Approval, TierPolicy
from approvals.policy import policy_for
from audit.chain import iso
from audit.models import AuditEvent
from evals.gates import evaluate_gate
from evals.models import EvalResult, EvalRun
from registry import diffing
from registry.models import LLMModel
from risk.models import ModelProfile, ModelReview

FAILING_CASES_KEPT = 200  # per run; the count of all failing cases is always given
OUTPUT_KEPT = 4000  # characters of each failing case's output


def _when(value):
    return iso(value) if value is not None else None


def _day(value):
    return value.isoformat() if value is not None else None


def _person(user):
    return user.get_username() if user is not None else None


def request_section(dr):
    prompt = dr.prompt
    return {
        "deploy_request": {
            "id": dr.pk, "kind": dr.kind, "title": dr.title, "status": dr.status, "break_glass": dr.break_glass,
            "review_status": dr.review_status, "rationale": dr.rationale,
            "environment": dr.environment.slug, "canary_percent": dr.canary_percent,
            "version": dr.version.number, "content_hash": dr.content_hash,
            "live_when_opened": dr.base_version.number if dr.base_version else None,
            "requested_by": _person(dr.requested_by), "requested_at": _when(dr.created_at),
            "decided_at": _when(dr.decided_at),
            "deployed_by": _person(dr.deployed_by), "deployed_at": _when(dr.deployed_at),
        },
        "prompt": {
            "slug": prompt.slug, "name": prompt.name, "description": prompt.description, "team": prompt.team.slug,
            "tier": prompt.tier, "tier_when_requested": dr.tier, "owner": _person(prompt.owner),
            "tags": list(prompt.tags), "data_categories": list(prompt.data_categories),
        },
    }


def _version(version):
    return {
        "number": version.number, "content_hash": version.content_hash, "author": _person(version.author),
        "created_at": _when(version.created_at), "change_note": version.change_note,
        "messages": version.messages, "variables": version.variables, "model": version.model_config,
    }


def version_section(dr):
    base = dr.base_version
    diff = diffing.unified(base, dr.version) if base is not None else "\n".join(diffing.version_text(dr.version))
    return {
        "version": _version(dr.version),
        "live_when_opened": _version(base) if base is not None else None,
        "diff": {
            "against": base.number if base is not None else None,
            "format": "unified" if base is not None else "whole version (nothing was live)",
            "text": diff,
        },
    }


def _policy_at(tier, when):
    """The tier's policy as it stood at ``when``: its history's record then, or the policy itself when
    it has not changed since (policies seeded by a migration have no history)."""
    record = TierPolicy.history.filter(tier=tier, history_date__lte=when).order_by("-history_date").first()
    if record is not None:
        return record.instance.snapshot()
    current = TierPolicy.objects.filter(tier=tier, updated_at__lte=when).first()
    return current.snapshot() if current is not None else None


def policy_section(dr):
    return {
        "opened_under": dr.policy_snapshot,
        "in_force_at_deploy": _policy_at(dr.tier, dr.deployed_at),
        "in_force_now": policy_for(dr.prompt.tier).snapshot(),
    }


def decisions_section(dr):
    rows = Approval.objects.filter(request=dr).select_related("user").order_by("created_at", "id")
    return {
        "decisions": [
            {
                "person": _person(a.user), "decision": a.decision, "comment": a.comment, "at": _when(a.created_at),
                "withdrawn_at": _when(a.withdrawn_at),
                "signature": {"method": a.auth_method, "authenticated_at": _when(a.authenticated_at), "amr": a.amr},
                "binding": {
                    "content_hash": a.content_hash, "environment": a.environment, "model": a.model_key,
                    "tier": a.tier, "policy_version": a.policy_version,
                },
            }
            for a in rows
        ]
    }


def _run(run):
    if run is None:
        return None
    failing = EvalResult.objects.filter(run=run, passed=False).select_related("case").order_by("position")
    kept = list(failing[:FAILING_CASES_KEPT])
    summary = run.summary or {}
    return {
        "id": run.pk, "suite": run.suite.slug, "version": run.version.number, "content_hash": run.content_hash,
        "model": f"{run.model_config.get('provider')}:{run.model_config.get('name')}", "trigger": run.trigger,
        "status": run.status, "pass_rate": run.pass_rate, "total": run.total,
        "passed": summary.get("passed"), "errors": summary.get("errors"), "cost_usd": summary.get("cost_usd"),
        "started_by": _person(run.created_by), "started_at": _when(run.started_at),
        "finished_at": _when(run.finished_at),
        "failing_cases": failing.count(),
        "failing": [
            {
                "position": r.position, "description": r.case.description, "vars": r.case.vars,
                "expected": r.case.expected, "output": r.output[:OUTPUT_KEPT], "verdicts": r.verdicts,
                "error": r.error, "latency_ms": r.latency_ms,
            }
            for r in kept
        ],
    }


def gate_section(dr, *, actor, deployed_event):
    """The gate as it stood at the deploy: the runs finished by then, against the version live then;
    and what the deploy itself recorded (its checklist, in its audit event)."""
    result = evaluate_gate(
        actor=actor, prompt=dr.prompt, version=dr.version, environment=dr.environment, record_decision=False,
        required=(dr.policy_snapshot or {}).get("requires_gate"), as_of=dr.deployed_at, live_then=dr.base_version,
    )
    run_ids = {c.get(key) for c in result["checks"] for key in ("run", "baseline_run")} - {None}
    runs = EvalRun.objects.filter(pk__in=run_ids).select_related("suite", "version", "created_by").order_by("id")
    changed_since = AuditEvent.objects.filter(
        action="gate.updated", prompt=dr.prompt.slug, occurred_at__gt=dr.deployed_at
    ).exists()
    return {
        "evaluated_as_of": _when(dr.deployed_at),
        "gate_changed_since_deploy": changed_since,
        "evaluation": result,
        "recorded_at_deploy": (deployed_event.data or {}).get("checks") if deployed_event else None,
        "runs": [_run(run) for run in runs],
    }


def _review(review):
    if review is None:
        return None
    return {
        "id": review.pk, "reviewer": review.reviewer_name, "decision": review.decision,
        "findings": review.findings, "evidence_links": review.evidence_links,
        "allowed_tiers": review.allowed_tiers, "status_before": review.status_before,
        "status_after": review.status_after, "previous_due": _day(review.previous_due),
        "next_review_due": _day(review.next_review_due), "signed_at": _when(review.created_at),
        "signature": {"method": review.auth_method, "authenticated_at": _when(review.authenticated_at)},
    }


def model_section(dr):
    entry = dr.version.llm_model
    then = LLMModel.history.filter(pk=entry.pk, history_date__lte=dr.deployed_at).order_by("-history_date").first()
    profile = ModelProfile.objects.filter(llm_model=entry).first()
    reviews = ModelReview.objects.filter(llm_model=entry)
    return {
        "register_entry": {
            "id": entry.pk, "provider": entry.provider, "model_id": entry.model_id, "owner": _person(entry.owner),
            "status": entry.status, "status_at_deploy": then.status if then is not None else None,
            "failure_modes": entry.failure_modes, "last_reviewed_at": _day(entry.last_reviewed_at),
            "next_review_due": _day(entry.next_review_due),
            "next_review_due_at_deploy": _day(then.next_review_due) if then is not None else None,
            "intended_use": profile.intended_use if profile else "",
            "limitations": profile.limitations if profile else "",
            "allowed_tiers": profile.allowed_tiers if profile else [],
            "linked_suites": sorted(profile.suites.values_list("slug", flat=True)) if profile else [],
        },
        "latest_review": _review(reviews.first()),
        "latest_review_at_deploy": _review(reviews.filter(created_at__lte=dr.deployed_at).first()),
    }


def as_json(value):
    """The pack's JSON files: sorted keys, two-space indent, UTF-8, one newline at the end."""
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode("utf-8")
