"""Which suites can run on a prompt version, and why the others cannot.

``services.start_run`` refuses a run by ``require_fit`` and the Run picker offers suites by
``run_choices``: both ask ``fit_of``, whose rule is ``assertions.case_misfits`` (a case fits when
its vars match the version's declared variables), so the page never offers what the service would
refuse, nor disables what it would accept.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass

from django.db.models import Q

from core.errors import ValidationFailed
from registry.rendering import normalize_variables

from . import assertions
from .models import Case, GateSuite
from .selectors import visible_suites

FIRST_FEW = 5  # offending cases a refusal or the picker names, in order


def runnable_suites(actor, prompt):
    """The suites ``start_run`` accepts for this prompt: its team's and the shared ones."""
    return visible_suites(actor).filter(Q(team__isnull=True) | Q(team=prompt.team))


@dataclass(frozen=True)
class CaseMisfit:
    """One case that does not fit: its position in the suite and the messages per variable."""

    position: int
    index: int  # in run order, from 0 (the refusal's ``cases[i]`` keys)
    problems: dict  # "variables.name" -> [messages]

    @property
    def messages(self):
        return [message for texts in self.problems.values() for message in texts]


@dataclass(frozen=True)
class SuiteFit:
    """Whether ``suite`` can run on version ``version_number``, and if not, why."""

    suite: object
    version_number: int
    total: int
    misfits: tuple
    summary: tuple  # the problems, most common first: ("3 of 5 cases need variable `account`, …", …)
    gate_min_pass_rate: float | None = None

    @property
    def fits(self):
        return self.total > 0 and not self.misfits

    @property
    def gate(self):
        return self.gate_min_pass_rate is not None

    @property
    def first_misfits(self):
        return self.misfits[:FIRST_FEW]

    @property
    def more_misfits(self):
        return max(0, len(self.misfits) - FIRST_FEW)

    @property
    def reason(self):
        """One sentence: why it cannot run (empty when it can)."""
        if self.total == 0:
            return "it has no cases yet"
        if not self.misfits:
            return ""
        more = len(self.summary) - 1
        return self.summary[0] + (f" (and {more} other problem{'s' if more != 1 else ''})" if more else "")


def _summary(cases, misfits, declared, total, number):
    """Each distinct problem once, with how many cases have it: a variable the version does not
    declare, a required one the case lacks, or one of the wrong type."""
    counts = Counter()
    for misfit in misfits:
        values = cases[misfit.index][1] or {}
        for key in misfit.problems:
            name = key.removeprefix("variables.")
            if name not in declared:
                kind = "undeclared"
            elif name in values:
                kind = "type"
            else:
                kind = "missing"
            counts[(kind, name)] += 1
    lines = []
    order = {"undeclared": 0, "missing": 1, "type": 2}
    for (kind, name), n in sorted(counts.items(), key=lambda kv: (-kv[1], order[kv[0][0]], kv[0][1])):
        cases_text = f"{n} of {total} case{'s' if total != 1 else ''}"
        one = n == 1 and total != 1  # "1 of 5 cases needs", "1 of 1 case needs", "3 of 5 cases need"
        s = "s" if one or total == 1 else ""
        if kind == "undeclared":
            lines.append(f"{cases_text} need{s} variable `{name}`, which v{number} does not declare")
        elif kind == "missing":
            lines.append(f"{cases_text} lack{s} `{name}`, which v{number} requires")
        else:
            lines.append(f"{cases_text} give{s} `{name}` a value that is not a {declared[name]['type']}")
    if not lines and misfits:
        lines.append(f"{len(misfits)} of {total} cases do not match v{number}'s variables")
    return tuple(lines)


def fit_of(suite, version, *, cases=None, gate_min_pass_rate=None):
    """How ``suite``'s cases fit ``version``. ``cases``: ``[(position, vars)]`` in run order when
    the caller has them already (otherwise they are read)."""
    if cases is None:
        cases = list(suite.cases.order_by("position").values_list("position", "vars"))
    declared = normalize_variables(version.variables)
    raw = assertions.case_misfits([{"vars": values} for _, values in cases], version.variables)
    misfits = tuple(CaseMisfit(position=cases[i][0], index=i, problems=problems) for i, problems in raw)
    return SuiteFit(
        suite=suite,
        version_number=version.number,
        total=len(cases),
        misfits=misfits,
        summary=_summary(cases, misfits, declared, len(cases), version.number),
        gate_min_pass_rate=gate_min_pass_rate,
    )


def require_fit(fit):
    """Refuse (``ValidationFailed``) a run of a suite that does not fit: no cases
    (``empty_suite``), or cases whose vars do not match (``case_variables_mismatch``, naming each
    case as ``cases[i].vars.name``)."""
    if fit.total == 0:
        raise ValidationFailed(
            f"suite '{fit.suite.slug}' has no cases",
            code="empty_suite",
            field_errors={"suite": ["add at least one case before running it"]},
        )
    if fit.misfits:
        raise ValidationFailed(
            f"{len(fit.misfits)} case(s) do not match the version's declared variables: {fit.reason}",
            code="case_variables_mismatch",
            field_errors=assertions.misfit_field_errors([(m.index, m.problems) for m in fit.misfits]),
        )


def run_choices(actor, prompt, version):
    """Every suite the actor may run on ``version``, as ``SuiteFit``s in the picker's order: the
    prompt's gate suites that fit, the other suites that fit, then those that cannot run (gate
    suites first). Two queries for the cases and the gate, however many suites."""
    suites = list(runnable_suites(actor, prompt))
    gate = dict(GateSuite.objects.filter(gate__prompt=prompt).values_list("suite_id", "min_pass_rate"))
    cases = defaultdict(list)
    rows = Case.objects.filter(suite__in=[s.pk for s in suites]).order_by("suite_id", "position")
    for suite_id, position, values in rows.values_list("suite_id", "position", "vars"):
        cases[suite_id].append((position, values))
    fits = [fit_of(s, version, cases=cases[s.pk], gate_min_pass_rate=gate.get(s.pk)) for s in suites]
    return sorted(fits, key=lambda f: (not f.fits, not f.gate))


def default_choice(choices):
    """The suite the picker selects first: the first gate suite that fits, else the first that fits."""
    return next((f.suite for f in choices if f.fits), None)
