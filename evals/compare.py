"""Two runs of the same suite side by side: regressions, improvements and the pass-rate delta."""

from core.errors import ValidationFailed


def compare_runs(run, base):
    if run.suite_id != base.suite_id:
        raise ValidationFailed(
            "runs of different suites cannot be compared",
            code="different_suites",
            field_errors={"against": [f"pick a run of suite '{run.suite.slug}'"]},
        )
    now = {r.case_id: r for r in run.results.all()}
    before = {r.case_id: r for r in base.results.all()}
    regressions, improvements, still_failing = [], [], []
    for case_id, result in sorted(now.items(), key=lambda kv: kv[1].position):
        old = before.get(case_id)
        if old is None:
            continue
        entry = {"case": case_id, "position": result.position}
        if old.passed and not result.passed:
            regressions.append(entry)
        elif not old.passed and result.passed:
            improvements.append(entry)
        elif not result.passed:
            still_failing.append(entry)
    delta = None
    if run.pass_rate is not None and base.pass_rate is not None:
        delta = round(run.pass_rate - base.pass_rate, 6)
    return {
        "run": run.pk,
        "against": base.pk,
        "suite": run.suite.slug,
        "pass_rate": run.pass_rate,
        "against_pass_rate": base.pass_rate,
        "pass_rate_delta": delta,
        "regressions": regressions,
        "improvements": improvements,
        "still_failing": still_failing,
    }
