"""Verdicts: what checking one assertion against one answer found, with the reason in words.

A case passes when it was checked at all and every verdict passed; its score is the weighted mean of
its verdicts' scores (0..1).
"""

import copy
from dataclasses import dataclass, field


@dataclass
class AssertionVerdict:
    type: str
    name: str | None
    passed: bool
    score: float
    reason: str
    weight: float = 1.0
    details: dict = field(default_factory=dict)


def verdict_dict(verdict):
    """The verdict as a result stores it. Field by field: ``dataclasses.asdict`` deep-copies every
    value, which cost a worker more than scoring the answer did; only ``details`` may hold
    containers, so only it is copied, and only when there is something in it."""
    return {
        "type": verdict.type,
        "name": verdict.name,
        "passed": verdict.passed,
        "score": verdict.score,
        "reason": verdict.reason,
        "weight": verdict.weight,
        "details": copy.deepcopy(verdict.details) if verdict.details else {},
    }


def case_passed(verdicts):
    """A case passes when it was checked at all and every assertion passed."""
    return bool(verdicts) and all(v.passed for v in verdicts)


def case_score(verdicts):
    """The weighted mean of the assertions' scores (0..1)."""
    total = sum(v.weight for v in verdicts)
    return sum(v.score * v.weight for v in verdicts) / total if total else 0.0


def _verdict(assertion, passed, reason, details=None, score=None):
    return AssertionVerdict(
        type=assertion["type"],
        name=assertion.get("name"),
        passed=passed,
        score=(1.0 if passed else 0.0) if score is None else score,
        reason=reason,
        weight=assertion["weight"],
        details=details or {},
    )


def _excerpt(text, limit=80):
    return repr(text if len(text) <= limit else text[:limit] + "…")
