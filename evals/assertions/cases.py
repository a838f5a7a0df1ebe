"""Cases and their assertions, checked before they are stored or run.

``normalize_cases`` refuses a malformed case before it is stored, reporting every error together
and naming each field (``cases[3].assertions[0].value``) with what is allowed; ``normalize_assertion``
returns one assertion in full form (defaults filled in); ``check_case_variables`` refuses a run whose
cases do not fit the prompt version's declared variables. Schemas of ``json_schema`` assertions are
checked as Draft 2020-12 (or the draft their ``$schema`` names).
"""

import json
import math

from jsonschema.exceptions import SchemaError
from jsonschema.validators import Draft202012Validator, validator_for

from core.errors import ValidationFailed
from registry.rendering import check_values, normalize_variables

from .jsonpath import parse_json_path
from .regex import MAX_REGEX, compile_regex

ASSERTION_TYPES = (
    "equals",
    "contains",
    "not_contains",
    "regex",
    "json_schema",
    "json_path_equals",
    "max_latency_ms",
    "max_cost_usd",
    "llm_judge",
)
_TYPE_KEYS = {
    "equals": {"value", "ignore_case"},
    "contains": {"value", "ignore_case"},
    "not_contains": {"value", "ignore_case"},
    "regex": {"value", "ignore_case", "negate"},
    "json_schema": {"value"},
    "json_path_equals": {"path", "value"},
    "max_latency_ms": {"value"},
    "max_cost_usd": {"value"},
    "llm_judge": {"rubric", "judge", "threshold"},
}
_COMMON_KEYS = {"type", "name", "weight"}
CASE_KEYS = ("vars", "expected", "assertions", "description", "tags")
MAX_CASES, MAX_ASSERTIONS, MAX_TAGS = 10_000, 50, 20
MAX_TEXT, MAX_SCHEMA_BYTES, MAX_RUBRIC = 10_000, 64 * 1024, 4_000
MAX_REPORTED_CASES = 50  # field errors are listed for this many failing cases, then summarized


def normalize_cases(cases: list, *, max_cases: int = MAX_CASES) -> list:
    """Every case checked (all errors reported together); a suite of zero cases is refused."""
    if not isinstance(cases, list):
        raise ValidationFailed("cases must be a list", field_errors={"cases": ["expected a list of case objects"]})
    if not cases:
        raise ValidationFailed(
            "a suite needs at least one case",
            code="empty_suite",
            field_errors={"cases": ["the list is empty; give at least one case"]},
        )
    if len(cases) > max_cases:
        raise ValidationFailed(
            f"too many cases at once: {len(cases)}", field_errors={"cases": [f"at most {max_cases} cases per request"]}
        )
    errors, clean = {}, []
    for index, case in enumerate(cases):
        try:
            clean.append(normalize_case(case, index=index))
        except ValidationFailed as exc:
            errors.update(exc.field_errors)
    if errors:
        raise ValidationFailed("some cases are invalid", field_errors=errors)
    return clean


def normalize_case(case: dict, *, index: int) -> dict:
    """Return ``{vars, expected, assertions, description, tags}`` with defaults filled in."""
    key = f"cases[{index}]"
    if not isinstance(case, dict):
        raise ValidationFailed(
            f"case {index} is not an object",
            field_errors={
                key: [
                    'a case is an object such as {"vars": {...}, "assertions": [{"type": "contains", "value": "..."}]}'
                ]
            },
        )
    errors = {}
    unknown = set(case) - set(CASE_KEYS)
    if unknown:
        errors[key] = [f"unknown keys {sorted(unknown)}; allowed: {', '.join(CASE_KEYS)}"]
    values = case.get("vars", {})
    if values is None:
        values = {}
    if not isinstance(values, dict):
        errors[f"{key}.vars"] = ["vars is an object of variable name → value"]
    expected = case.get("expected")
    if expected is not None and not isinstance(expected, str):
        errors[f"{key}.expected"] = ["expected (the reference answer) is a string or null"]
    description = case.get("description") or ""
    if not isinstance(description, str) or len(description) > 500:
        errors[f"{key}.description"] = ["description is a string of at most 500 characters"]
    tags = case.get("tags") or []
    if (
        not isinstance(tags, list)
        or len(tags) > MAX_TAGS
        or not all(isinstance(t, str) and 0 < len(t) <= 50 for t in tags)
    ):
        errors[f"{key}.tags"] = [f"tags is a list of at most {MAX_TAGS} non-empty strings of up to 50 characters"]
    raw = case.get("assertions")
    clean = []
    if not isinstance(raw, list) or not raw:
        # a case that asserts nothing passes whatever the model says, which only inflates pass rates
        errors[f"{key}.assertions"] = [f"give a non-empty list of assertions; types: {', '.join(ASSERTION_TYPES)}"]
    elif len(raw) > MAX_ASSERTIONS:
        errors[f"{key}.assertions"] = [f"at most {MAX_ASSERTIONS} assertions per case"]
    else:
        for position, assertion in enumerate(raw):
            try:
                clean.append(normalize_assertion(assertion, key=f"{key}.assertions[{position}]"))
            except ValidationFailed as exc:
                errors.update(exc.field_errors)
    if errors:
        raise ValidationFailed(f"case {index} is invalid", field_errors=errors)
    return {"vars": values, "expected": expected, "assertions": clean, "description": description, "tags": list(tags)}


def normalize_assertion(assertion, *, key="assertion"):
    """One assertion in full form (defaults filled in), or ValidationFailed naming ``key.field``."""
    if not isinstance(assertion, dict):
        raise ValidationFailed(
            "an assertion is an object",
            field_errors={key: ['an assertion is an object such as {"type": "contains", "value": "..."}']},
        )
    kind = assertion.get("type")
    if kind not in ASSERTION_TYPES:
        raise ValidationFailed(
            f"unknown assertion type {kind!r}",
            code="unknown_assertion_type",
            field_errors={f"{key}.type": [f"{kind!r} is not an assertion type; allowed: {', '.join(ASSERTION_TYPES)}"]},
        )
    errors = {}
    allowed = _COMMON_KEYS | _TYPE_KEYS[kind]
    unknown = set(assertion) - allowed
    if unknown:
        errors[key] = [f"unknown keys {sorted(unknown)} for {kind}; allowed: {', '.join(sorted(allowed))}"]
    clean = {"type": kind, "weight": 1.0}
    if "name" in assertion:
        name = assertion["name"]
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            errors[f"{key}.name"] = ["name is a non-empty string of at most 100 characters"]
        else:
            clean["name"] = name.strip()
    if "weight" in assertion:
        weight = assertion["weight"]
        if not _is_number(weight) or weight <= 0:
            errors[f"{key}.weight"] = ["weight is a number greater than 0"]
        else:
            clean["weight"] = float(weight)
    for flag in ("ignore_case", "negate"):
        if flag in _TYPE_KEYS[kind]:
            if not isinstance(assertion.get(flag, False), bool):
                errors[f"{key}.{flag}"] = [f"{flag} is true or false"]
            clean[flag] = assertion.get(flag) is True
    try:
        clean.update(_TYPE_NORMALIZERS[kind](assertion, key, clean))
    except ValidationFailed as exc:
        errors.update(exc.field_errors)
    if errors:
        raise ValidationFailed(f"invalid {kind} assertion", field_errors=errors)
    return clean


def _fail(key, message):
    raise ValidationFailed(message, field_errors={key: [message]})


def _is_number(value):
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _text_value(assertion, key, _clean):
    value = assertion.get("value")
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        _fail(f"{key}.value", f"value is a string of at most {MAX_TEXT} characters")
    if assertion["type"] != "equals" and not value:
        _fail(f"{key}.value", "value is a non-empty string (an empty string is in every answer)")
    return {"value": value}


def _regex_value(assertion, key, clean):
    pattern = assertion.get("value")
    if not isinstance(pattern, str) or not pattern or len(pattern) > MAX_REGEX:
        _fail(f"{key}.value", f"value is a regular expression of 1 to {MAX_REGEX} characters")
    compile_regex(pattern, ignore_case=clean.get("ignore_case", False), key=f"{key}.value")
    return {"value": pattern}


def _schema_value(assertion, key, _clean):
    schema = assertion.get("value")
    if not isinstance(schema, dict | bool):
        _fail(f"{key}.value", "value is a JSON Schema (an object, or true/false)")
    if len(json.dumps(schema)) > MAX_SCHEMA_BYTES:
        _fail(f"{key}.value", f"the schema is larger than {MAX_SCHEMA_BYTES} bytes")
    try:
        validator_for(schema, default=Draft202012Validator).check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        _fail(f"{key}.value", f"not a valid JSON Schema (Draft 2020-12) at {where}: {exc.message}")
    return {"value": schema}


def _json_path_value(assertion, key, _clean):
    try:
        parse_json_path(assertion.get("path"))
    except ValueError as exc:
        _fail(f"{key}.path", str(exc))
    if "value" not in assertion:
        _fail(f"{key}.value", "value is required (any JSON value, null included)")
    return {"path": assertion["path"], "value": assertion["value"]}


def _limit_value(assertion, key, _clean):
    value = assertion.get("value")
    if not _is_number(value) or value <= 0:
        unit = "milliseconds" if assertion["type"] == "max_latency_ms" else "US dollars"
        _fail(f"{key}.value", f"value is a positive number ({unit})")
    return {"value": value}


def _judge_value(assertion, key, _clean):
    errors = {}
    rubric = assertion.get("rubric")
    if not isinstance(rubric, str) or not rubric.strip() or len(rubric) > MAX_RUBRIC:
        errors[f"{key}.rubric"] = [f"rubric is a non-empty string of at most {MAX_RUBRIC} characters"]
    judge = assertion.get("judge")
    if judge is not None and (
        not isinstance(judge, dict)
        or set(judge) != {"provider", "name"}
        or not all(isinstance(v, str) and v.strip() and len(v) <= 200 for v in judge.values())
    ):
        errors[f"{key}.judge"] = ['judge is {"provider": "...", "name": "..."} or omitted for the default judge']
    threshold = assertion.get("threshold", 0.5)
    if not _is_number(threshold) or not 0 <= threshold <= 1:
        errors[f"{key}.threshold"] = ["threshold is a number from 0 to 1"]
    if errors:
        raise ValidationFailed("invalid llm_judge assertion", field_errors=errors)
    return {
        "rubric": rubric,
        "judge": judge and {"provider": judge["provider"], "name": judge["name"]},
        "threshold": float(threshold),
    }


_TYPE_NORMALIZERS = {
    "equals": _text_value,
    "contains": _text_value,
    "not_contains": _text_value,
    "regex": _regex_value,
    "json_schema": _schema_value,
    "json_path_equals": _json_path_value,
    "max_latency_ms": _limit_value,
    "max_cost_usd": _limit_value,
    "llm_judge": _judge_value,
}


def case_misfits(cases, declared_variables):
    """``[(index, {"variables.name": [messages]})]`` for each case whose vars miss a required
    variable, mistype one, or add one the version does not declare (index counts from 0 in run
    order). The one rule of "a case fits a version": ``check_case_variables`` refuses runs by it and
    ``evals.suite_fit`` offers suites by it."""
    declared = normalize_variables(declared_variables)
    misfits = []
    for index, case in enumerate(cases):
        values = case.get("vars") if isinstance(case, dict) else getattr(case, "vars", None)
        try:
            check_values(declared, values if values is not None else {})
        except ValidationFailed as exc:
            misfits.append((index, exc.field_errors))
    return misfits


def check_case_variables(cases, declared_variables) -> None:
    """Refuse a run when any case's vars miss a required variable, mistype one, or add one the
    version does not declare; keys are ``cases[i].vars.name`` (i counts from 0 in run order)."""
    misfits = case_misfits(cases, declared_variables)
    if misfits:
        raise ValidationFailed(
            f"{len(misfits)} case(s) do not match the version's declared variables",
            code="case_variables_mismatch",
            field_errors=misfit_field_errors(misfits),
        )


def misfit_field_errors(misfits):
    """``case_misfits`` as a refusal's field errors: ``cases[i].vars.name`` for the first
    ``MAX_REPORTED_CASES`` cases, then a ``cases`` line saying how many more."""
    errors = {}
    for index, field_errors in misfits[:MAX_REPORTED_CASES]:
        for name, messages in field_errors.items():
            errors[f"cases[{index}].vars" + name.removeprefix("variables")] = messages
    if len(misfits) > MAX_REPORTED_CASES:
        errors["cases"] = [f"{len(misfits)} cases do not match; the first {MAX_REPORTED_CASES} are listed"]
    return errors


def judge_models(cases):
    """The (provider, name) judges the cases name explicitly, for checking against the register."""
    return sorted(
        {
            (a["judge"]["provider"], a["judge"]["name"])
            for case in cases
            for a in case.get("assertions", [])
            if a.get("type") == "llm_judge" and a.get("judge")
        }
    )
