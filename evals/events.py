"""One function per audit event type of evals, called explicitly by its services inside their
change (as approvals.events and audit.events do for theirs): suites, cases, runs, gates, drift, budgets."""

from audit.services import record
from core.actors import Actor


def _on_prompt(actor, prompt, action, target_type, target_id, data):
    return record(
        actor=actor, action=action, target_type=target_type, target_id=target_id, team=prompt.team.slug,
        prompt=prompt.slug, data=data,
    )


def suite_created(actor, suite):
    return record(
        actor=actor, action="suite.created", target_type="suite", target_id=suite.slug,
        team=suite.team.slug if suite.team_id else "", data={"name": suite.name, "shared": suite.team_id is None},
    )


def cases_added(actor, suite, *, count, replaced, first_position):
    return record(
        actor=actor, action="cases.added", target_type="suite", target_id=suite.slug,
        team=suite.team.slug if suite.team_id else "",
        data={"count": count, "replaced": replaced, "first_position": first_position},
    )


def run_started(actor, run, *, cases):
    return _on_prompt(actor, run.prompt, "eval_run.started", "eval_run", run.pk, {
        "version": run.version.number,
        "content_hash": run.version.content_hash,
        "suite": run.suite.slug,
        "model": f"{run.model_config['provider']}:{run.model_config['name']}",
        "trigger": run.trigger,
        "cases": cases,
    })


def run_cancel_requested(actor, run):
    return _on_prompt(actor, run.prompt, "eval_run.cancel_requested", "eval_run", run.pk, {})


def run_completed(run, summary):
    """A worker closed the run (the system acts: no person finished it)."""
    return _on_prompt(Actor.for_system("eval-runner"), run.prompt, "eval_run.completed", "eval_run", run.pk, {
        "status": run.status,
        "pass_rate": run.pass_rate,
        "passed": summary["passed"],
        "total": run.total,
        "errors": summary["errors"],
        "cost_usd": summary["cost_usd"],
    })


def gate_updated(actor, prompt, *, before, after):
    return _on_prompt(actor, prompt, "gate.updated", "gate", prompt.slug, {"before": before, "after": after})


def gate_evaluated(actor, prompt, version, *, environment, result):
    return _on_prompt(actor, prompt, "gate.evaluated", "prompt_version", f"{prompt.slug}@{version.number}", {
        "environment": environment.slug,
        "passed": result["passed"],
        "failed_checks": [c["code"] for c in result["checks"] if not c["passed"]],
    })


def drift_scheduled(actor, run, pointer, version, suite):
    return _on_prompt(actor, pointer.prompt, "drift.scheduled", "eval_run", run.pk, {
        "environment": pointer.environment.slug,
        "version": version.number,
        "content_hash": version.content_hash,
        "suite": suite.slug,
    })


def drift_checked(prompt, run, numbers):
    return _on_prompt(Actor.for_system("drift-check"), prompt, "drift.checked", "eval_run", run.pk, numbers)


def drift_alert(prompt, notice, alert):
    return _on_prompt(Actor.for_system("drift-check"), prompt, "drift.alert", "drift_notice", notice.pk, alert)


def drift_acknowledged(actor, notice):
    return _on_prompt(actor, notice.prompt, "drift.acknowledged", "drift_notice", notice.pk, {
        "run": notice.run_id, "reason": notice.reason, "suite": notice.suite.slug,
    })


def drift_skipped(prompt, suite, *, environment, version, code, detail):
    """The scheduler did not start a nightly run (a team over its budget): reported, not silent."""
    return _on_prompt(Actor.for_system("drift-scheduler"), prompt, "drift.skipped", "prompt", prompt.slug, {
        "environment": environment, "version": version, "suite": suite.slug, "code": code, "detail": detail,
    })


def _on_team(actor, team, action, data):
    return record(actor=actor, action=action, target_type="team", target_id=team.slug, team=team.slug, data=data)


def budget_set(actor, team, *, before, after):
    return _on_team(actor, team, "budget.set", {"before_usd": before, "after_usd": after})


def budget_overridden(actor, override):
    return _on_team(actor, override.team, "budget.overridden", {
        "month": override.month.strftime("%Y-%m"), "reason": override.reason,
    })


def budget_warning(team, warning):
    """Spend reached 80% of the month's budget (the system noticed it, once a month)."""
    return _on_team(Actor.for_system("budget-check"), team, "budget.warning", {
        "month": warning.month.strftime("%Y-%m"), "budget_usd": str(warning.budget_usd),
        "spent_usd": round(warning.spent_usd, 6),
    })


# What the audit log calls these actions, and the prefixes it offers as one filter choice
# (core.vocabulary; described when the app starts).
LABELS = {
    "suite.created": "Suite created",
    "cases.added": "Cases added",
    "eval_run.started": "Eval run started",
    "eval_run.cancel_requested": "Eval run cancelled",
    "eval_run.completed": "Eval run finished",
    "gate.updated": "Gate changed",
    "gate.evaluated": "Gate evaluated",
    "drift.scheduled": "Drift runs scheduled",
    "drift.checked": "Drift checked",
    "drift.alert": "Drift alert",
    "drift.acknowledged": "Drift notice acknowledged",
    "drift.skipped": "Drift run skipped",
    "budget.set": "Eval budget set",
    "budget.overridden": "Eval budget overridden",
    "budget.warning": "Eval budget at 80%",
}
GROUPS = {
    "eval_run.": "Eval runs",
    "gate.": "Gates",
    "drift.": "Drift",
    "budget.": "Eval budgets",
}
