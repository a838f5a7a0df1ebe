"""Two runs of the same suite, case by case: whether each case's output changed, its verdict change
(regression, improvement, still failing, still passing), and its cost, latency and token deltas,
with the sums of all of them. ``compare_runs`` is the API's answer and the page's sums; the page
reads the outputs of the cases it shows with ``outputs_of``. Outputs are compared by their MD5 in
the database, so comparing two large runs never loads every output."""

from django.db.models.functions import MD5

from core.errors import ValidationFailed

from .models import EvalResult

MEASURES = ("cost_usd", "latency_ms", "input_tokens", "output_tokens")
VERDICTS = ("regression", "improvement", "still_failing", "still_passing")
FILTERS = {
    "changed": "Changed output",
    "regressions": "Regressions",
    "improvements": "Improvements",
    "all": "All cases",
}


def _results(run):
    rows = run.results.annotate(output_md5=MD5("output"))
    rows = rows.values("case_id", "position", "passed", "output_md5", *MEASURES)
    return {row["case_id"]: row for row in rows}


def _verdict(now, before):
    if before and not now:
        return "regression"
    if now and not before:
        return "improvement"
    return "still_passing" if now else "still_failing"


def _minus(a, b):
    return None if a is None or b is None else round(a - b, 6)


def _case(now, old):
    return {
        "case": now["case_id"],
        "position": now["position"],
        "verdict": _verdict(now["passed"], old["passed"]),
        "passed": now["passed"],
        "against_passed": old["passed"],
        "output_changed": now["output_md5"] != old["output_md5"],
        "deltas": {m: _minus(now[m], old[m]) for m in MEASURES},
    }


def _sum(rows, measure):
    values = [row[measure] for row in rows if row[measure] is not None]
    return round(sum(values), 6) if values else None


def compare_runs(run, base):
    """The comparison of ``run`` with ``base`` (runs of one suite): per case present in both, the
    verdict change, whether the output changed and the deltas (``run`` minus ``base``); ``counts``
    of each; ``totals`` of each measure over those cases on each side and their delta; and the
    lists the API always had (``regressions``, ``improvements``, ``still_failing``)."""
    if run.suite_id != base.suite_id:
        raise ValidationFailed(
            "runs of different suites cannot be compared",
            code="different_suites",
            field_errors={"against": [f"pick a run of suite '{run.suite.slug}'"]},
        )
    now, before = _results(run), _results(base)
    both = sorted((case_id for case_id in now if case_id in before), key=lambda case_id: now[case_id]["position"])
    cases = [_case(now[case_id], before[case_id]) for case_id in both]
    counts = {verdict: sum(1 for c in cases if c["verdict"] == verdict) for verdict in VERDICTS}
    counts.update(
        cases=len(cases),
        changed_output=sum(1 for c in cases if c["output_changed"]),
        only_in_run=len(now.keys() - before.keys()),
        only_in_against=len(before.keys() - now.keys()),
    )
    mine = [now[case_id] for case_id in both]
    theirs = [before[case_id] for case_id in both]
    totals = {"run": {m: _sum(mine, m) for m in MEASURES}, "against": {m: _sum(theirs, m) for m in MEASURES}}
    totals["delta"] = {m: _minus(totals["run"][m], totals["against"][m]) for m in MEASURES}
    delta = None
    if run.pass_rate is not None and base.pass_rate is not None:
        delta = round(run.pass_rate - base.pass_rate, 6)

    def listed(verdict):
        return [{"case": c["case"], "position": c["position"]} for c in cases if c["verdict"] == verdict]

    return {
        "run": run.pk,
        "against": base.pk,
        "suite": run.suite.slug,
        "pass_rate": run.pass_rate,
        "against_pass_rate": base.pass_rate,
        "pass_rate_delta": delta,
        "regressions": listed("regression"),
        "improvements": listed("improvement"),
        "still_failing": listed("still_failing"),
        "counts": counts,
        "totals": totals,
        "cases": cases,
    }


def filtered(cases, which):
    """The compared cases a filter of the page shows (``FILTERS``)."""
    if which == "changed":
        return [c for c in cases if c["output_changed"]]
    if which == "regressions":
        return [c for c in cases if c["verdict"] == "regression"]
    if which == "improvements":
        return [c for c in cases if c["verdict"] == "improvement"]
    return list(cases)


def outputs_of(run, base, case_ids):
    """``{case_id: {"now": EvalResult, "before": EvalResult}}`` for the cases a page shows, with
    their outputs and verdicts (one query)."""
    pairs = {case_id: {} for case_id in case_ids}
    rows = EvalResult.objects.filter(run__in=(run.pk, base.pk), case_id__in=list(case_ids)).select_related("case")
    for result in rows:
        pairs[result.case_id]["now" if result.run_id == run.pk else "before"] = result
    return pairs
