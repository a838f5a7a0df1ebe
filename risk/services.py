"""Every state change of the risk workspace: editing a model's profile, signing a quarterly review,
setting the per-tier rule on overdue reviews, the daily ``model.review_due`` reminders, and
signing off the quarterly access review (``risk.access_review``). Each
checks its rule in ``core.access``, writes, and records its audit event in one transaction; the
register entry itself changes only through ``registry.services.update_llm_model``, inside it.

A review is signed like a Tier-0 approval: the browser asks for the password again when the
session's last authentication is older than ``PROMPTLEDGER_REAUTH_MAX_AGE`` (approvals'
``needs_reauth`` on the caller's ``Signature``), and the review records the method and the time."""

import datetime
import re
from types import SimpleNamespace
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction

from approvals.services import needs_reauth
from approvals.services.signatures import token_cannot_sign
from audit.transactions import change, lock_rows, retry_transient
from core import access
from core.actors import Actor
from core.errors import Conflict, PermissionDenied, ValidationFailed
from core.tiers import TIERS, check_tier
from evals.models import Suite
from registry.models import LLMModel
from registry.services import update_llm_model
from registry.services.validation import check_choice, check_text, get_active_user
from webhooks import events as webhook_events

from . import access_review, events, policy, selectors
from .models import AccessReviewSignOff, ModelProfile, ModelReview, ReviewDueNotice, RiskPolicy

# A review is signed under the Tier-0 rule: re-authentication when the sign-in is old.
REVIEW_SIGNING = SimpleNamespace(tier=0, reauth_for_approval=True)
DECISIONS = [d for d, _ in ModelReview.DECISION_CHOICES]
STATUS_AFTER = {
    ModelReview.KEEP: LLMModel.APPROVED, ModelReview.RESTRICT: LLMModel.RESTRICTED,
    ModelReview.RETIRE: LLMModel.RETIRED,
}
MAX_LINKS, MAX_DAYS_AHEAD, QUARTER_DAYS = 20, 400, 91
PERIOD = re.compile(r"[0-9]{4}-Q[1-4]")


def _profile(entry):
    return ModelProfile.objects.get_or_create(llm_model=entry)[0]


def _suites(slugs):
    if slugs is None:
        return None
    if isinstance(slugs, str) or not isinstance(slugs, list | tuple):
        raise ValidationFailed("suites must be a list of suite slugs", field_errors={"suites": ["expected a list"]})
    found = {s.slug: s for s in Suite.objects.filter(slug__in=[str(s) for s in slugs])}
    missing = sorted({str(s) for s in slugs} - set(found))
    if missing:
        raise ValidationFailed(
            f"no suite {', '.join(missing)}", field_errors={"suites": [f"no suite '{m}'" for m in missing]}
        )
    return list(found.values())


@retry_transient
def edit_model(*, actor, llm_model, owner=None, failure_modes=None, intended_use=None, limitations=None,
               suites=None):
    """Change a model's document: owner and failure modes (the register entry's, through the
    registry's service), intended use, limitations and linked suites. ``None`` leaves a part as
    it is. The risk role and admins only; one audited transaction."""
    access.require(actor, "model_profile.edit")
    texts = {
        name: check_text(value, name, required=False, max_length=10000)
        for name, value in (("intended_use", intended_use), ("limitations", limitations))
        if value is not None
    }
    linked = _suites(suites)
    with change():
        entry = lock_rows(LLMModel.objects).get(pk=llm_model.pk)
        register = {}
        if owner is not None and owner != entry.owner.get_username():
            register["owner"] = get_active_user(owner, "owner").get_username()
        if failure_modes is not None and failure_modes.strip() != entry.failure_modes:
            register["failure_modes"] = failure_modes
        if register:
            entry = update_llm_model(actor=actor, llm_model=entry, **register)
        profile = _profile(entry)
        before = events.profile_state(profile)
        for name, value in texts.items():
            setattr(profile, name, value)
        profile.updated_by = actor.user
        profile.save()
        if linked is not None:
            profile.suites.set(linked)
        after = events.profile_state(profile)
        if after != before:
            events.profile_changed(actor, entry, before=before, after=after)
    return entry


def _links(values):
    values = [v.strip() for v in (values or []) if isinstance(v, str) and v.strip()]
    if len(values) > MAX_LINKS:
        raise ValidationFailed("too many evidence links", field_errors={"evidence_links": [f"at most {MAX_LINKS}"]})
    for value in values:
        check_text(value, "evidence_links", max_length=500)
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValidationFailed(
                f"'{value[:80]}' is not a link", field_errors={"evidence_links": ["each link is an http(s) URL"]}
            )
    return values


def _tiers(values):
    tiers = sorted({int(check_tier(v, "allowed_tiers")) for v in (values or [])})
    if not tiers:
        raise ValidationFailed(
            "restricting needs the tiers the model may still carry",
            field_errors={"allowed_tiers": ["choose at least one tier"]},
        )
    if len(tiers) == len(TIERS):
        raise ValidationFailed(
            "a restriction to every tier restricts nothing",
            field_errors={"allowed_tiers": ["leave out at least one tier, or keep the model approved"]},
        )
    return tiers


def _next_due(value, decision, today):
    if value in (None, ""):  # quarterly by default; a retired model has no next review
        return None if decision == ModelReview.RETIRE else today + datetime.timedelta(days=QUARTER_DAYS)
    if not isinstance(value, datetime.date):
        try:
            value = datetime.date.fromisoformat(str(value))
        except ValueError as exc:
            raise ValidationFailed(
                "next_review_due is not a date", field_errors={"next_review_due": ["use YYYY-MM-DD"]}
            ) from exc
    if decision == ModelReview.RETIRE:
        return None
    if value <= today or value > today + datetime.timedelta(days=MAX_DAYS_AHEAD):
        raise ValidationFailed(
            "the next review must fall after today and within the next 400 days",
            field_errors={"next_review_due": [f"a date from {today + datetime.timedelta(days=1)} "
                                              f"to {today + datetime.timedelta(days=MAX_DAYS_AHEAD)}"]},
        )
    return value


def _check_signature(actor, signature, *, what):
    """Refuse a signature too old for the Tier-0 rule (``reauth_required``), or an SSO person's API
    token, which cannot vouch for them again."""
    if needs_reauth(REVIEW_SIGNING, signature):
        age = (datetime.datetime.now(datetime.UTC) - signature.at).total_seconds()
        raise PermissionDenied(
            f"{what} is signed like a tier-0 approval: enter your password again "
            f"(last sign-in {int(age // 60)} minutes ago)",
            code="reauth_required",
        )
    if signature.method == "api_token" and token_cannot_sign(REVIEW_SIGNING, actor.user):
        raise PermissionDenied(
            f"people who sign in with SSO sign {what} in the browser, after signing in again at the identity "
            "provider; an API token cannot sign it",
            code="reauth_required",
        )


@retry_transient
def record_review(*, actor, llm_model, findings, decision, signature, next_review_due=None, evidence_links=(),
                  allowed_tiers=()):
    """Sign a quarterly review of ``llm_model``: keep it approved, restrict it to ``allowed_tiers``
    or retire it, and set when the next review is due (a quarter on by default). Signed like a
    Tier-0 approval: a browser session older than ``PROMPTLEDGER_REAUTH_MAX_AGE`` is refused with
    ``reauth_required``; the review records the signature's method and time and the live prompts
    the decision affects. The register entry's status and dates change through the registry's
    service, in this transaction."""
    access.require(actor, "model_review.sign")
    findings = check_text(findings, "findings", max_length=20000)
    decision = check_choice(decision, "decision", DECISIONS)
    links = _links(evidence_links)
    tiers = _tiers(allowed_tiers) if decision == ModelReview.RESTRICT else []
    today = policy.today()
    due = _next_due(next_review_due, decision, today)
    _check_signature(actor, signature, what="a model review")
    with change():
        entry = lock_rows(LLMModel.objects).get(pk=llm_model.pk)
        status_before, previous_due = entry.status, entry.next_review_due
        affected = selectors.affected_prompts(entry, decision, tiers)
        entry = update_llm_model(
            actor=actor, llm_model=entry, status=STATUS_AFTER[decision], last_reviewed_at=today, next_review_due=due,
        )
        profile = _profile(entry)
        if profile.allowed_tiers != tiers:
            before = events.profile_state(profile)
            profile.allowed_tiers, profile.updated_by = tiers, actor.user
            profile.save(update_fields=["allowed_tiers", "updated_by", "updated_at"])
            events.profile_changed(actor, entry, before=before, after=events.profile_state(profile))
        review = ModelReview.objects.create(
            llm_model=entry, reviewer=actor.user, reviewer_name=actor.user.get_username(), findings=findings,
            evidence_links=links, decision=decision, allowed_tiers=tiers, status_before=status_before,
            status_after=entry.status, previous_due=previous_due, next_review_due=due, affected_prompts=affected,
            auth_method=signature.method, authenticated_at=signature.at,
        )
        events.review_signed(actor, review)
    return review


@retry_transient
def update_risk_policy(*, actor, tier, overdue_review):
    """Set whether a deploy of a tier-``tier`` prompt on a model with an overdue review is refused
    or only warned about. Admins only; audited."""
    access.require(actor, "risk_policy.update")
    tier = int(check_tier(tier))
    overdue_review = check_choice(overdue_review, "overdue_review", [c for c, _ in RiskPolicy.OVERDUE_CHOICES])
    with change():
        row = lock_rows(RiskPolicy.objects).filter(tier=tier).first()
        before = row.overdue_review if row is not None else policy.DEFAULT_OVERDUE[tier]
        if row is None:
            row = RiskPolicy(tier=tier)
        row.overdue_review, row.updated_by = overdue_review, actor.user
        row.save()
        if before != overdue_review:
            events.risk_policy_updated(actor, row, before=before)
    return row


@retry_transient
def notify_review_due(*, entry, on=None):
    """Send ``model.review_due`` for ``entry``'s current due date unless it was sent already: one
    reminder per (model, due date), however often the daily task runs or how many run at once (a
    unique row decides). Returns whether it sent one. The system's job (beat)."""
    on = on or policy.today()
    system = Actor.for_system("model-review-reminder")
    with change():
        entry = LLMModel.objects.select_related("owner").get(pk=entry.pk)
        due = entry.next_review_due
        if due is None or due > policy.due_horizon(on) or entry.status == LLMModel.RETIRED:
            return False
        try:
            with transaction.atomic():
                ReviewDueNotice.objects.create(llm_model=entry, due_on=due)
        except IntegrityError:
            return False  # sent already (or being sent by another run, which wins)
        overdue = due < on
        webhook_events.model_review_due(llm_model=entry, due_on=due, overdue=overdue,
                                        live=selectors.live_uses(entry))
        events.review_due_notified(system, entry, due_on=due, overdue=overdue)
    return True


def notify_due_reviews(*, on=None):
    """The daily task: a reminder for every model due or overdue that has not had one for its
    current due date. Returns how many were sent."""
    on = on or policy.today()
    due = LLMModel.objects.filter(next_review_due__lte=policy.due_horizon(on)).exclude(status=LLMModel.RETIRED)
    return sum(1 for entry in due.order_by("pk") if notify_review_due(entry=entry, on=on))


@retry_transient
def sign_off_access_review(*, actor, period, comment, fingerprint, signature):
    """Sign off the access review for ``period`` (a quarter, ``2026-Q4``, not a future one): the
    compliance role only, a person, re-authenticated like a Tier-0 approval. ``fingerprint`` is the
    sha256 of the report the person saw; the report is rebuilt here and the sign-off refused with
    ``report_changed`` when it differs, so what is recorded (the report itself, stored with the
    sign-off) is exactly what was read. Immutable; audited as ``access_review.signed_off``."""
    access.require(actor, "access_review.sign_off")
    period = check_text(period, "period", max_length=7)
    if not PERIOD.fullmatch(period) or period > access_review.current_period():
        raise ValidationFailed(
            f"'{period[:20]}' is not a quarter up to the current one",
            field_errors={"period": [f"a quarter such as {access_review.current_period()}, not a future one"]},
        )
    comment = check_text(comment, "comment", max_length=5000)
    if not isinstance(fingerprint, str) or not re.fullmatch(r"[0-9a-f]{64}", fingerprint):
        raise ValidationFailed("fingerprint is not a sha256", field_errors={"fingerprint": ["64 hex characters"]})
    _check_signature(actor, signature, what="an access review")
    with change():
        report = access_review.build(actor=actor)
        if access_review.fingerprint(report) != fingerprint:
            raise Conflict(
                "the access review changed since you opened it (an account, role, token or approver changed): "
                "read it again before signing",
                code="report_changed",
            )
        signed = AccessReviewSignOff.objects.create(
            period=period, reviewer=actor.user, reviewer_name=actor.user.get_username(), comment=comment,
            fingerprint=fingerprint, report=report, user_count=len(report["users"]),
            auth_method=signature.method, authenticated_at=signature.at,
        )
        events.access_review_signed_off(actor, signed)
    return signed
