"""Drift: every night the gate suites of each version live in production run again (trigger
``schedule``, started by the system), and each such run, when it finishes, is compared with the
previous finished scheduled run of the same prompt and suite on the production pointer (whichever
version that was).

A run drifts when its pass rate falls below the gate's ``min_pass_rate`` (and the previous one did
not, or there is none), or when it falls more than the gate's ``max_regression`` below the previous
one (``PROMPTLEDGER_DRIFT_MAX_DROP`` when the gate sets none). A drifting run gets one
``DriftNotice`` on its prompt, an audit event ``drift.alert`` with the numbers, and the webhook event
``drift.alert`` (``webhooks.events``) sent once the transaction commits; a run that does not drift records
``drift.checked``. Only runs the scheduler started (no ``created_by``) form the series, so a run a
person labels "schedule" cannot move the baseline. A team that has spent its month's eval budget
gets no nightly runs: each one skipped is logged and recorded as ``drift.skipped`` (docs/costs.md).
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from audit.transactions import change, lock_rows, retry_transient
from core import access
from core.actors import Actor
from core.errors import Conflict, DomainError, NotFound
from registry.models import Deployment
from registry.permissions import visible_prompts
from webhooks import events as webhook_events

from . import events, services
from .gates import SCORED
from .models import DriftNotice, EvalRun, GateSuite

log = logging.getLogger(__name__)

# The environment whose live versions are re-run nightly; notices name it.
DRIFT_ENVIRONMENT = "production"


def _scheduler():
    return Actor.for_system("drift-scheduler")


def _scheduled_runs():
    """Runs the scheduler started: trigger ``schedule`` and no human creator."""
    return EvalRun.objects.filter(trigger=EvalRun.SCHEDULE, created_by__isnull=True)


def schedule_drift_runs(now=None):
    """Start one scheduled run per gate suite of every prompt whose production pointer has a
    version (kill-switched pointers are not live and are skipped), unless the scheduler already
    started that prompt and suite today (in ``TIME_ZONE``). Returns the runs started.

    A prompt whose run cannot start (a retired model, an empty suite) is logged and skipped; the
    others still run."""
    local = timezone.localtime(now or timezone.now())
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    day_end = day_start + timedelta(days=1)
    pointers = (
        Deployment.objects.filter(environment__slug=DRIFT_ENVIRONMENT, version__isnull=False, disabled=False)
        .select_related("prompt__team", "environment")
        .order_by("prompt__slug")
    )
    started = []
    for pointer in pointers:
        gate_suites = GateSuite.objects.filter(gate__prompt_id=pointer.prompt_id).select_related("suite")
        for gate_suite in gate_suites.order_by("suite__slug"):
            run = _schedule_one(pointer, gate_suite.suite, day_start, day_end)
            if run is not None:
                started.append(run)
    return started


@retry_transient
def _schedule_one(pointer, suite, day_start, day_end):
    actor = _scheduler()
    try:
        with change():
            # The pointer's row lock serializes two beats racing (a re-sent beat, two schedulers),
            # so the check below and the start cannot interleave: one run per prompt, suite and day.
            locked = lock_rows(Deployment.objects).get(pk=pointer.pk)
            if locked.version is None or locked.disabled:
                return None
            already = _scheduled_runs().filter(
                prompt_id=pointer.prompt_id, suite=suite, created_at__gte=day_start, created_at__lt=day_end
            )
            if already.exists():
                return None
            run = services.start_run(
                actor=actor, prompt=pointer.prompt, version=locked.version, suite=suite, trigger=EvalRun.SCHEDULE
            )
            events.drift_scheduled(actor, run, pointer, locked.version, suite)
            return run
    except DomainError as exc:
        log.warning(
            "drift: no scheduled run of %s on %s: %s (%s)", suite.slug, pointer.prompt.slug, exc.detail, exc.code
        )
        if exc.code == "budget_exceeded":  # skipped, and said so where people look: the audit log
            _report_skipped(pointer, suite, exc)
        return None


def _report_skipped(pointer, suite, exc):
    with change():
        events.drift_skipped(
            pointer.prompt, suite, environment=pointer.environment.slug,
            version=pointer.version.number if pointer.version_id else None, code=exc.code, detail=exc.detail,
        )


def _previous_run(run):
    return (
        _scheduled_runs()
        .filter(
            prompt_id=run.prompt_id, suite_id=run.suite_id, status__in=SCORED, pass_rate__isnull=False, pk__lt=run.pk
        )
        .select_related("version")
        .order_by("-pk")
        .first()
    )


def check_drift(run):
    """Compare a finished scheduled run with the previous one; returns its ``DriftNotice`` or None.

    Called inside the runner's finalize transaction, so the decision commits with the run's
    completion, exactly once. It works in a savepoint and logs its own failures: a drift bug must
    never keep a run from finishing. Idempotent per run: a second call returns the same notice."""
    if run.trigger != EvalRun.SCHEDULE or run.created_by_id is not None:
        return None
    if run.status not in SCORED or run.pass_rate is None:
        return None
    try:
        with change():
            return _check(run)
    except Exception:  # noqa: BLE001 - see the docstring: the run still finalizes
        log.exception("drift check of run %s failed", run.pk)
        return None


def _check(run):
    existing = DriftNotice.objects.filter(run=run).first()
    if existing is not None:
        return existing
    gate_suite = (
        GateSuite.objects.filter(gate__prompt_id=run.prompt_id, suite_id=run.suite_id).select_related("gate").first()
    )
    if gate_suite is None:  # the suite left the gate while the run was going
        return None
    prompt, previous = run.prompt, _previous_run(run)
    min_rate = gate_suite.min_pass_rate
    max_drop = gate_suite.gate.max_regression
    if max_drop is None:
        max_drop = settings.PROMPTLEDGER_DRIFT_MAX_DROP
    drop = None if previous is None else previous.pass_rate - run.pass_rate
    reason = threshold = None
    if run.pass_rate < min_rate and (previous is None or previous.pass_rate >= min_rate):
        reason, threshold = DriftNotice.BELOW_THRESHOLD, min_rate
    elif drop is not None and drop > max_drop + 1e-9:
        reason, threshold = DriftNotice.REGRESSION, max_drop
    numbers = {
        "environment": DRIFT_ENVIRONMENT,
        "suite": run.suite.slug,
        "version": run.version.number,
        "content_hash": run.content_hash,
        "pass_rate": run.pass_rate,
        "previous_run": previous.pk if previous else None,
        "previous_version": previous.version.number if previous else None,
        "previous_pass_rate": previous.pass_rate if previous else None,
        "drop": drop,
        "min_pass_rate": min_rate,
        "max_drop": max_drop,
    }
    if reason is None:
        events.drift_checked(prompt, run, numbers)
        return None
    notice = DriftNotice.objects.create(
        prompt=prompt,
        run=run,
        previous_run=previous,
        suite_id=run.suite_id,
        environment=DRIFT_ENVIRONMENT,
        pass_rate=run.pass_rate,
        previous_pass_rate=previous.pass_rate if previous else None,
        threshold=threshold,
        reason=reason,
    )
    alert = {**numbers, "notice": notice.pk, "run": run.pk, "reason": reason, "threshold": threshold}
    events.drift_alert(prompt, notice, alert)
    webhook_events.drift_alert(prompt=prompt, alert=alert)
    return notice


def open_notices(*, prompt):
    """A prompt's notices nobody has acknowledged yet, newest first (the prompt is already visible)."""
    return (
        DriftNotice.objects.filter(prompt=prompt, acknowledged_at__isnull=True)
        .select_related("prompt", "run__version", "previous_run__version", "suite", "acknowledged_by")
        .order_by("-created_at", "-id")
    )


def get_visible_notice(*, actor, notice_id):
    access.require(actor, "read")
    notice = (
        DriftNotice.objects.filter(pk=notice_id, prompt__in=visible_prompts(actor))
        .select_related("prompt__team", "run__version", "previous_run__version", "suite", "acknowledged_by")
        .first()
    )
    if notice is None:
        raise NotFound(f"no notice {notice_id} (or you cannot see it)", code="notice_not_found")
    return notice


@retry_transient
def acknowledge_notice(*, actor, notice):
    """Mark a notice seen: the prompt's team approvers and owners (and admins); once, audited."""
    access.require(actor, "drift.acknowledge", team=notice.prompt.team)
    with change():
        locked = lock_rows(DriftNotice.objects).get(pk=notice.pk)
        if locked.acknowledged_at is not None:
            raise Conflict(f"notice {notice.pk} is already acknowledged", code="notice_acknowledged")
        locked.acknowledged_at, locked.acknowledged_by = timezone.now(), actor.user
        locked.save(update_fields=["acknowledged_at", "acknowledged_by"])
        events.drift_acknowledged(actor, locked)
    return locked
