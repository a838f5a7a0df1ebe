"""Assertions (scorers): what a case demands of a model's answer, checked before and after a run.

``normalize_cases`` refuses a malformed case before it is stored, naming the field
(``cases[3].assertions[0].value``) and what is allowed; ``check_case_variables`` refuses a run whose
cases do not fit the prompt version's declared variables; ``evaluate`` scores one answer and never
raises for a bad answer: every assertion yields a verdict, and a case passes when all of them pass.

One module per concept: ``cases`` (checking a case and its assertions), ``regex`` (RE2 and what it
refuses), ``jsonpath`` (JSON answers and the JSONPath subset), ``scoring`` (an answer against its
assertions), ``verdicts`` (what a check found) and ``judge`` (the LLM judge).

Limits worth knowing:
- ``regex`` patterns are at most 1,000 characters and run on RE2 (the ``google-re2`` package), whose
  time is linear in the answer's length whatever the pattern: ``(a|aa)*c`` or ``(a+)+$`` cannot
  backtrack. RE2 has no backreferences or lookarounds; such patterns are refused with the reason.
- ``json_path_equals`` understands ``$`` followed by ``.key``, ``[index]`` (negative counts from the
  end) and ``['key']`` / ``["key"]`` (no quotes or backslashes inside): no wildcards, filters,
  slices or recursive descent.
- ``json_schema`` and ``json_path_equals`` parse the whole answer as JSON, allowing one surrounding
  Markdown code fence. Schemas are checked as Draft 2020-12 (or the draft their ``$schema``
  names); remote ``$ref`` are never fetched.
"""

from .cases import (
    ASSERTION_TYPES,
    CASE_KEYS,
    MAX_ASSERTIONS,
    MAX_CASES,
    MAX_REPORTED_CASES,
    MAX_RUBRIC,
    MAX_SCHEMA_BYTES,
    MAX_TAGS,
    MAX_TEXT,
    case_misfits,
    check_case_variables,
    judge_models,
    misfit_field_errors,
    normalize_assertion,
    normalize_case,
    normalize_cases,
)
from .jsonpath import json_equal, parse_json_output, parse_json_path, resolve_json_path
from .judge import JUDGE_SYSTEM, MAX_JUDGE_CHARS, judge_messages, parse_judgement, provider_judge
from .regex import MAX_REGEX, REGEX_MAX_MEM, compile_regex
from .scoring import evaluate
from .verdicts import AssertionVerdict, case_passed, case_score, verdict_dict

__all__ = [
    "ASSERTION_TYPES",
    "AssertionVerdict",
    "CASE_KEYS",
    "JUDGE_SYSTEM",
    "MAX_ASSERTIONS",
    "MAX_CASES",
    "MAX_JUDGE_CHARS",
    "MAX_REGEX",
    "MAX_REPORTED_CASES",
    "MAX_RUBRIC",
    "MAX_SCHEMA_BYTES",
    "MAX_TAGS",
    "MAX_TEXT",
    "REGEX_MAX_MEM",
    "case_passed",
    "case_score",
    "case_misfits",
    "check_case_variables",
    "compile_regex",
    "evaluate",
    "json_equal",
    "judge_messages",
    "judge_models",
    "misfit_field_errors",
    "normalize_assertion",
    "normalize_case",
    "normalize_cases",
    "parse_json_output",
    "parse_json_path",
    "parse_judgement",
    "provider_judge",
    "resolve_json_path",
    "verdict_dict",
]
