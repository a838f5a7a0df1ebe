"""One function per audit event type of the risk workspace, called explicitly by its services inside
their transaction. Every event about a model has target ``llm_model``/<id>, beside the register's
own ``llm_model.registered`` and ``llm_model.updated``."""

from audit.services import record


def profile_state(profile):
    return {
        "intended_use": profile.intended_use,
        "limitations": profile.limitations,
        "allowed_tiers": profile.allowed_tiers,
        "suites": sorted(profile.suites.values_list("slug", flat=True)) if profile.pk else [],
    }


def profile_changed(actor, entry, *, before, after):
    changes = {k: {"before": before.get(k), "after": after[k]} for k in after if before.get(k) != after[k]}
    return record(
        actor=actor, action="model_profile.updated", target_type="llm_model", target_id=entry.pk,
        data={"provider": entry.provider, "model_id": entry.model_id, "changes": changes},
    )


def review_signed(actor, review):
    entry = review.llm_model
    return record(
        actor=actor, action="model_review.signed", target_type="llm_model", target_id=entry.pk,
        data={
            "review": review.pk, "provider": entry.provider, "model_id": entry.model_id,
            "reviewer": review.reviewer_name, "decision": review.decision, "allowed_tiers": review.allowed_tiers,
            "status": {"before": review.status_before, "after": review.status_after},
            "next_review_due": review.next_review_due, "previous_due": review.previous_due,
            "findings": review.findings, "evidence_links": review.evidence_links,
            "affected_prompts": review.affected_prompts,
            "signature": {"method": review.auth_method, "authenticated_at": review.authenticated_at},
        },
    )


def risk_policy_updated(actor, policy, *, before):
    return record(
        actor=actor, action="risk_policy.updated", target_type="risk_policy", target_id=policy.tier,
        data={"tier": policy.tier, "overdue_review": {"before": before, "after": policy.overdue_review}},
    )


def review_due_notified(actor, entry, *, due_on, overdue):
    return record(
        actor=actor, action="model_review.due_notified", target_type="llm_model", target_id=entry.pk,
        data={"provider": entry.provider, "model_id": entry.model_id, "due_on": due_on, "overdue": overdue},
    )


def evidence_pack_exported(actor, request, *, manifest_sha256, files):
    """A deploy's evidence pack was built: the event seals its manifest (``manifest_sha256``) into the
    chain, and the change that records it signs a checkpoint of it at once."""
    return record(
        actor=actor, action="evidence_pack.exported", target_type="deploy_request", target_id=request.pk,
        team=request.prompt.team.slug, prompt=request.prompt.slug,
        data={
            "deploy_request": request.pk, "version": request.version.number, "content_hash": request.content_hash,
            "environment": request.environment.slug, "manifest_sha256": manifest_sha256, "files": files,
        },
    )


def access_review_signed_off(actor, signed):
    return record(
        actor=actor, action="access_review.signed_off", target_type="access_review", target_id=signed.pk,
        data={
            "period": signed.period, "reviewer": signed.reviewer_name, "comment": signed.comment,
            "fingerprint": signed.fingerprint, "users": signed.user_count,
            "signature": {"method": signed.auth_method, "authenticated_at": signed.authenticated_at},
        },
    )


# What the audit log calls these actions, and the prefixes it offers as one filter choice
# (core.vocabulary; described when the app starts).
LABELS = {
    "model_profile.updated": "Model document changed",
    "model_review.signed": "Model review signed",
    "model_review.due_notified": "Model review due (notified)",
    "risk_policy.updated": "Overdue-review policy changed",
    "evidence_pack.exported": "Evidence pack exported",
    "access_review.signed_off": "Access review signed off",
}
GROUPS = {
    "model_review.": "Model reviews",
    "access_review.": "Access reviews",
}
