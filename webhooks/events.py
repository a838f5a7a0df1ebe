"""One function per webhook event, called explicitly by the service that makes the change, inside
its transaction (as ``audit.events`` is): each builds the event's ``data`` and calls
``webhooks.services.emit``, which writes the deliveries and signals workers once the transaction
commits. Nothing is sent for a change that rolls back.

Signatures (keyword arguments only; ``actor`` is a ``core.actors.Actor``, ``team`` a
``registry.models.Team``)::

    version_created(*, actor, version)                        # a new version, not an identical push
    deploy_request_opened(*, actor, team, data: dict)
    deploy_request_approved(*, actor, team, data: dict)
    deploy_request_rejected(*, actor, team, data: dict)
    deployment_changed(*, actor, pointer, before: dict)       # before: version, canary_version, canary_percent
    kill_switch_changed(*, actor, pointer, was_disabled: bool)
    eval_run_completed(*, run)
    gate_failed(*, actor, prompt, version, result: dict)      # result: evals.gates.evaluate_gate's answer
    drift_alert(*, prompt, alert: dict)
    model_review_due(*, llm_model, due_on, overdue: bool, live: list)  # site-wide: no team
    budget_warning(*, team, month: str, budget_usd: str, spent_usd: float)  # once per team and month

The ``deploy_request_*`` functions take the request as a plain, JSON-safe dict so this module
needs no approvals model; pass at least ``id``, ``prompt``, ``version``, ``content_hash``,
``environment``, ``requester`` and ``status`` (and ``comment`` when approving or rejecting). Every
event's data also carries ``team`` and ``actor`` (``{"username", "type"}``; the type is ``user``,
``token`` or ``system``). The payloads are documented in docs/webhooks.md.
"""

from . import services


def _who(actor):
    return {"username": actor.username, "type": actor.kind}


def _number(version):
    return version.number if version is not None else None


def _pointer_context(pointer):
    return {"prompt": pointer.prompt.slug, "team": pointer.prompt.team.slug, "environment": pointer.environment.slug}


# --- prompts ------------------------------------------------------------------------------------------
def version_created(*, actor, version):
    prompt = version.prompt
    data = {
        "prompt": prompt.slug,
        "team": prompt.team.slug,
        "version": version.number,
        "content_hash": version.content_hash,
        "parent": _number(version.parent),
        "model": {"provider": version.model_config["provider"], "name": version.model_config["name"]},
        "message": version.change_note,
        "actor": _who(actor),
    }
    return services.emit("version.created", data, team=prompt.team)


# --- deploy requests (approvals) ------------------------------------------------------------------------
def _deploy_request(event, actor, team, data):
    return services.emit(event, {**data, "team": team.slug, "actor": _who(actor)}, team=team)


def deploy_request_opened(*, actor, team, data):
    return _deploy_request("deploy_request.opened", actor, team, data)


def deploy_request_approved(*, actor, team, data):
    return _deploy_request("deploy_request.approved", actor, team, data)


def deploy_request_rejected(*, actor, team, data):
    return _deploy_request("deploy_request.rejected", actor, team, data)


# --- deployments --------------------------------------------------------------------------------------
def deployment_changed(*, actor, pointer, before):
    """A label moved: what ``environment`` serves for ``prompt``, from ``from_version`` to
    ``to_version``, with the canary before and after."""
    data = {
        **_pointer_context(pointer),
        "from_version": before.get("version"),
        "to_version": _number(pointer.version),
        "content_hash": pointer.version.content_hash if pointer.version is not None else None,
        "canary": {
            "before": {"version": before.get("canary_version"), "percent": before.get("canary_percent")},
            "after": {"version": _number(pointer.canary_version), "percent": pointer.canary_percent},
        },
        "actor": _who(actor),
    }
    return services.emit("deployment.changed", data, team=pointer.prompt.team)


def kill_switch_changed(*, actor, pointer, was_disabled):
    data = {
        **_pointer_context(pointer),
        "disabled": pointer.disabled,
        "was_disabled": was_disabled,
        "reason": pointer.disabled_reason,
        "version": _number(pointer.version),
        "actor": _who(actor),
    }
    return services.emit("kill_switch.changed", data, team=pointer.prompt.team)


# --- evals --------------------------------------------------------------------------------------------
def eval_run_completed(*, run):
    """A run finished: ``status`` is completed, completed_with_errors or cancelled."""
    summary = run.summary or {}
    data = {
        "run": run.pk,
        "prompt": run.prompt.slug,
        "team": run.prompt.team.slug,
        "version": run.version.number,
        "content_hash": run.content_hash,
        "suite": run.suite.slug,
        "model": {"provider": run.model_config.get("provider"), "name": run.model_config.get("name")},
        "trigger": run.trigger,
        "status": run.status,
        "pass_rate": run.pass_rate,
        "passed": summary.get("passed"),
        "total": run.total,
        "errors": summary.get("errors"),
        "cost_usd": summary.get("cost_usd"),
        "started_by": run.created_by.get_username() if run.created_by_id else None,
        "actor": {"username": "system", "type": "system"},
    }
    return services.emit("eval_run.completed", data, team=run.prompt.team)


def gate_failed(*, actor, prompt, version, result):
    data = {
        "prompt": prompt.slug,
        "team": prompt.team.slug,
        "version": version.number,
        "content_hash": version.content_hash,
        "environment": result["environment"],
        "failed_checks": [check for check in result["checks"] if not check["passed"]],
        "actor": _who(actor),
    }
    return services.emit("gate.failed", data, team=prompt.team)


def drift_alert(*, prompt, alert):
    """A nightly run of what is live in production drifted; ``alert`` holds the numbers."""
    data = {**alert, "prompt": prompt.slug, "team": prompt.team.slug, "actor": {"username": "system", "type": "system"}}
    return services.emit("drift.alert", data, team=prompt.team)


# --- the model risk register ------------------------------------------------------------------------
def model_review_due(*, llm_model, due_on, overdue, live):
    """A model's quarterly review is due (or overdue); ``live`` lists where it serves prompts. Sent
    once per due date, to site-wide subscriptions (a model belongs to no team)."""
    data = {
        "model": {"id": llm_model.pk, "provider": llm_model.provider, "model_id": llm_model.model_id},
        "status": llm_model.status,
        "owner": llm_model.owner.get_username(),
        "due_on": due_on.isoformat(),
        "overdue": overdue,
        "live": live,
        "actor": {"username": "system", "type": "system"},
    }
    return services.emit("model.review_due", data, team=None)


# --- eval budgets -----------------------------------------------------------------------------------
def budget_warning(*, team, month, budget_usd, spent_usd):
    """A team's eval spend reached 80% of its monthly budget (``month`` is ``YYYY-MM``); sent once
    per team and month, to the team's subscriptions and site-wide ones."""
    budget = float(budget_usd)
    data = {
        "team": team.slug,
        "month": month,
        "budget_usd": str(budget_usd),
        "spent_usd": round(spent_usd, 6),
        "percent": round(100 * spent_usd / budget, 1) if budget else None,
        "actor": {"username": "system", "type": "system"},
    }
    return services.emit("budget.warning", data, team=team)
