"""The reviewer's evidence of change: for each of a prompt's gate suites, the candidate version's
run compared with the run of the version live in the target environment (the runs the gate reads,
``gates.newest_scored_run``), with the first few changed outputs. The request page shows it through
``templates/evals/_gate_comparisons.html``; approvals may call ``for_version`` directly."""

from registry.diffing import word_diff
from registry.models import Deployment
from registry.permissions import visible_prompts

from . import compare
from .gates import newest_scored_run
from .models import GateSuite

CHANGED_INLINE = 3  # changed outputs shown inline per gate suite; the comparison page has the rest


def _baseline_version(prompt, version, environment, baseline):
    live = Deployment.objects.filter(prompt=prompt, environment=environment).select_related("version").first()
    for candidate in (live.version if live else None, baseline):
        if candidate is not None and candidate.pk != version.pk:
            return candidate
    return None


def for_version(actor, *, prompt, version, environment, baseline=None):
    """One entry per gate suite of ``prompt``: ``suite``, ``run`` (the candidate's), ``baseline_run``
    (the live version's; ``baseline`` stands in when the candidate is itself live, e.g. after its
    deploy), ``diff`` (``compare.compare_runs``) and ``changed`` (the first changed outputs, with
    their word diff), or ``missing`` saying which run is not there."""
    if not visible_prompts(actor).filter(pk=prompt.pk).exists():
        return []
    gate_suites = list(GateSuite.objects.filter(gate__prompt=prompt).select_related("suite"))
    if not gate_suites:
        return []
    against = _baseline_version(prompt, version, environment, baseline)
    entries = []
    for gs in gate_suites:
        run = newest_scored_run(prompt, version.content_hash, gs.suite_id)
        base = newest_scored_run(prompt, against.content_hash, gs.suite_id) if against else None
        entry = {"suite": gs.suite, "run": run, "baseline_run": base, "baseline_version": against,
                 "diff": None, "changed": [], "missing": ""}
        if against is None:
            entry["missing"] = f"nothing else is live in {environment.slug} to compare with"
        elif run is None:
            entry["missing"] = f"v{version.number} has no finished run of {gs.suite.slug}"
        elif base is None:
            entry["missing"] = f"v{against.number} (live) has no finished run of {gs.suite.slug}"
        else:
            entry["diff"] = compare.compare_runs(run, base)
            changed = [c for c in entry["diff"]["cases"] if c["output_changed"]][:CHANGED_INLINE]
            pairs = compare.outputs_of(run, base, [c["case"] for c in changed])
            for case in changed:
                now, before = pairs[case["case"]].get("now"), pairs[case["case"]].get("before")
                words = word_diff(before.output, now.output) if now and before else None
                entry["changed"].append({**case, "now": now, "before": before, "words": words})
            entry["more_changed"] = entry["diff"]["counts"]["changed_output"] - len(changed)
        entries.append(entry)
    return entries
