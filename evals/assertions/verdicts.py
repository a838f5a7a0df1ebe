"""Verdicts: what checking one assertion against one answer found, with the reason in words.

A case passes when it was checked at all and every verdict passed; its score is the weighted mean of
its verdicts' scores (0..1).
"""

from dataclasses import asdict, dataclass, field


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
    return asdict(verdict)


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
