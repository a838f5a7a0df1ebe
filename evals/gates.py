"""Gates: the suites and thresholds a version must meet, evaluated on its exact content hash.

A check passes when the newest finished run of the suite on a version with this content hash
reaches ``min_pass_rate`` and, when a different version is live in the target environment, does
not fall more than ``max_regression`` below that version's newest run of the same suite.
Tier-0 and Tier-1 prompts with no gate suite fail with ``no_gate_configured``.
"""

from audit.transactions import change, lock_rows, retry_transient
from core import access
from core.errors import ValidationFailed
from registry import hooks
from registry.models import Deployment
from webhooks import events as webhook_events

from . import events
from .models import EvalRun, Gate, GateSuite, Suite

SCORED = (EvalRun.COMPLETED, EvalRun.COMPLETED_WITH_ERRORS)


def _rate(value, field):
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValidationFailed(f"{field} must be between 0 and 1", field_errors={field: ["a number from 0 to 1"]})
    return float(value)


def gate_config(prompt):
    gate = Gate.objects.filter(prompt=prompt).first()
    if gate is None:
        return {"suites": [], "max_regression": None}
    return {
        "suites": [
            {"suite": gs.suite.slug, "min_pass_rate": gs.min_pass_rate} for gs in gate.suites.select_related("suite")
        ],
        "max_regression": gate.max_regression,
    }


@retry_transient
def set_gate(*, actor, prompt, suites, max_regression=None):
    """Replace a prompt's gate; owners of its team. Suites must be the team's or shared."""
    access.require(actor, "gate.set", team=prompt.team)
    if not isinstance(suites, list):
        raise ValidationFailed(
            "suites must be a list", field_errors={"suites": ['e.g. [{"suite": "s", "min_pass_rate": 0.9}]']}
        )
    rows, seen = [], set()
    for index, entry in enumerate(suites):
        key = f"suites[{index}]"
        if not isinstance(entry, dict) or "suite" not in entry:
            raise ValidationFailed(
                "each gate suite names a suite", field_errors={key: ['{"suite": ..., "min_pass_rate": ...}']}
            )
        suite = Suite.objects.filter(slug=entry["suite"]).first()
        if suite is None or (suite.team_id is not None and suite.team_id != prompt.team_id):
            raise ValidationFailed(
                f"no suite '{entry['suite']}' for this prompt",
                code="unknown_suite",
                field_errors={f"{key}.suite": ["a suite of this prompt's team, or a shared one"]},
            )
        if suite.pk in seen:
            raise ValidationFailed("a suite is listed twice", field_errors={f"{key}.suite": ["listed twice"]})
        seen.add(suite.pk)
        rows.append((suite, _rate(entry.get("min_pass_rate", 1.0), f"{key}.min_pass_rate")))
    max_regression = None if max_regression is None else _rate(max_regression, "max_regression")
    with change():
        before = gate_config(prompt)
        gate, _ = lock_rows(Gate.objects).get_or_create(prompt=prompt)
        gate.max_regression, gate.updated_by = max_regression, actor.user
        gate.save()
        gate.suites.all().delete()
        GateSuite.objects.bulk_create([GateSuite(gate=gate, suite=s, min_pass_rate=r) for s, r in rows])
        after = gate_config(prompt)
        events.gate_updated(actor, prompt, before=before, after=after)
    return gate


def newest_scored_run(prompt, content_hash, suite_id, as_of=None):
    """The newest finished, scored run of a suite on a content hash (finished by ``as_of`` when
    given): the run a gate reads."""
    runs = EvalRun.objects.filter(prompt=prompt, content_hash=content_hash, suite_id=suite_id, status__in=SCORED)
    if as_of is not None:
        runs = runs.filter(finished_at__lte=as_of)
    return runs.order_by("-finished_at", "-id").first()


def gate_required(prompt):
    """Whether the prompt's tier policy asks for a passing gate (``TierPolicy.requires_gate``,
    which admins edit): the one home of that rule, for the deploy checklist and the gate API alike."""
    required = hooks.provided("gate_required")  # approvals answers from the tier policy
    return True if required is None else required(prompt)


@retry_transient
def evaluate_gate(
    *, actor, prompt, version, environment, record_decision=True, required=None, as_of=None, live_then=None
):
    """``{"passed": bool, "checks": [...]}`` for ``version`` going to ``environment``; audited.
    ``required``: whether a gate must exist (the tier policy's ``requires_gate``; asked if None).
    ``as_of`` evaluates it as it stood at that time (a deploy's evidence pack): only runs finished by
    then count, and the baseline is ``live_then``, the version live in the environment then."""
    gate = Gate.objects.filter(prompt=prompt).first()
    gate_suites = list(gate.suites.select_related("suite")) if gate else []
    checks = []
    if not gate_suites:
        required = gate_required(prompt) if required is None else required
        checks.append(
            {
                "code": "no_gate_configured",
                "passed": not required,
                "detail": (
                    f"the tier-{prompt.tier} policy requires a gate suite, and none is configured"
                    if required
                    else f"no gate suite configured; the tier-{prompt.tier} policy does not require one"
                ),
            }
        )
    if as_of is None:
        live = Deployment.objects.filter(prompt=prompt, environment=environment).select_related("version").first()
        live_version = live.version if live and live.version_id and live.version_id != version.pk else None
    else:
        live_version = live_then if live_then is not None and live_then.pk != version.pk else None
    for gs in gate_suites:
        run = newest_scored_run(prompt, version.content_hash, gs.suite_id, as_of)
        check = {
            "suite": gs.suite.slug,
            "min_pass_rate": gs.min_pass_rate,
            "run": run.pk if run else None,
            "pass_rate": run.pass_rate if run else None,
        }
        if run is None:
            checks.append(
                {
                    **check,
                    "code": "no_run",
                    "passed": False,
                    "detail": f"no finished run of '{gs.suite.slug}' on this content hash",
                }
            )
            continue
        if run.pass_rate < gs.min_pass_rate:
            checks.append(
                {
                    **check,
                    "code": "below_threshold",
                    "passed": False,
                    "detail": f"pass rate {run.pass_rate:.3f} is below {gs.min_pass_rate:.3f}",
                }
            )
            continue
        baseline = newest_scored_run(prompt, live_version.content_hash, gs.suite_id, as_of) if live_version else None
        if baseline is not None and gate.max_regression is not None:
            check.update(
                baseline_run=baseline.pk, baseline_pass_rate=baseline.pass_rate, baseline_version=live_version.number
            )
            drop = baseline.pass_rate - run.pass_rate
            if drop > gate.max_regression + 1e-9:
                checks.append(
                    {
                        **check,
                        "code": "regression",
                        "passed": False,
                        "detail": f"{drop:.3f} below v{live_version.number} live in {environment.slug}, "
                        f"more than the {gate.max_regression:.3f} allowed",
                    }
                )
                continue
        checks.append({**check, "code": "ok", "passed": True, "detail": "meets the gate"})
    result = {
        "prompt": prompt.slug,
        "version": version.number,
        "content_hash": version.content_hash,
        "environment": environment.slug,
        "passed": all(c["passed"] for c in checks),
        "checks": checks,
    }
    if record_decision:
        with change():
            events.gate_evaluated(actor, prompt, version, environment=environment, result=result)
            if not result["passed"]:
                webhook_events.gate_failed(actor=actor, prompt=prompt, version=version, result=result)
    return result
