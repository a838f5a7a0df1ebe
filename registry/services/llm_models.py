"""The model risk register: which provider models exist, who owns them, and their status."""

import datetime

from django.db import IntegrityError

from audit import events
from audit.transactions import change, lock_rows, retry_transient
from core import access
from core.errors import Conflict, ValidationFailed

from ..models import LLMModel
from .validation import check_choice, check_text, get_active_user

PROVIDERS = [p for p, _ in LLMModel.PROVIDER_CHOICES]
STATUSES = [s for s, _ in LLMModel.STATUS_CHOICES]


def _date(value, field):
    if value in (None, ""):
        return None
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value))
    except ValueError as exc:
        raise ValidationFailed(f"{field} is not a date", field_errors={field: ["use YYYY-MM-DD"]}) from exc


@retry_transient
def create_llm_model(
    *,
    actor,
    provider,
    model_id,
    owner,
    status=LLMModel.RESTRICTED,
    failure_modes="",
    last_reviewed_at=None,
    next_review_due=None,
):
    """Register a model; the risk role and admins only. Reviews default to quarterly."""
    access.require(actor, "llm_model.create")
    check_choice(provider, "provider", PROVIDERS)
    check_choice(status, "status", STATUSES)
    model_id = check_text(model_id, "model_id", max_length=200)
    owner_user = get_active_user(owner, "owner")
    reviewed = _date(last_reviewed_at, "last_reviewed_at")
    due = _date(next_review_due, "next_review_due")
    if due is None and reviewed is not None:
        due = reviewed + datetime.timedelta(days=91)
    try:
        with change():
            entry = LLMModel.objects.create(
                provider=provider,
                model_id=model_id,
                owner=owner_user,
                status=status,
                failure_modes=check_text(failure_modes, "failure_modes", required=False, max_length=10000),
                last_reviewed_at=reviewed,
                next_review_due=due,
            )
            events.llm_model_registered(actor, entry)
            return entry
    except IntegrityError as exc:
        raise Conflict(
            f"{provider}:{model_id} is already registered",
            code="model_exists",
            field_errors={"model_id": ["already registered for this provider"]},
        ) from exc


@retry_transient
def update_llm_model(*, actor, llm_model, **changes):
    """Change a register entry's owner, status, failure modes or review dates."""
    access.require(actor, "llm_model.update")
    allowed = {"owner", "status", "failure_modes", "last_reviewed_at", "next_review_due"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationFailed(
            "these fields cannot be changed", field_errors={k: ["read-only or unknown"] for k in sorted(unknown)}
        )
    with change():
        entry = lock_rows(LLMModel.objects).get(pk=llm_model.pk)
        before = events.model_state(entry)
        if "owner" in changes:
            entry.owner = get_active_user(changes["owner"], "owner")
        if "status" in changes:
            entry.status = check_choice(changes["status"], "status", STATUSES)
        if "failure_modes" in changes:
            entry.failure_modes = check_text(
                changes["failure_modes"], "failure_modes", required=False, max_length=10000
            )
        if "last_reviewed_at" in changes:
            entry.last_reviewed_at = _date(changes["last_reviewed_at"], "last_reviewed_at")
            if "next_review_due" not in changes and entry.last_reviewed_at:
                entry.next_review_due = entry.last_reviewed_at + datetime.timedelta(days=91)
        if "next_review_due" in changes:
            entry.next_review_due = _date(changes["next_review_due"], "next_review_due")
        entry.save()
        events.llm_model_updated(actor, entry, before=before)
    return entry
