"""Scoring one answer against a case's assertions.

``evaluate`` never raises for a bad answer: every assertion yields a verdict, in order (a stored
assertion that today's rules refuse yields a failing one saying why), and the ``llm_judge``
assertions of an answer are asked concurrently. ``json_schema`` and ``json_path_equals`` parse the
whole answer as JSON; schemas are checked as Draft 2020-12 (or the draft their ``$schema`` names),
and remote ``$ref`` are never fetched.
"""

import asyncio
import json

from jsonschema.validators import Draft202012Validator, validator_for
from referencing.exceptions import Unresolvable

from core.errors import ValidationFailed

from .cases import normalize_assertion
from .jsonpath import json_equal, parse_json_output, parse_json_path, resolve_json_path
from .judge import _judge
from .regex import compile_regex
from .verdicts import AssertionVerdict, _excerpt, _verdict


async def evaluate(
    assertions, *, output: str, expected: str | None, latency_ms: float, cost_usd: float, judge=None
) -> list[AssertionVerdict]:
    """One verdict per assertion, in order. ``judge`` is ``async (*, provider, model, messages)``
    returning the judge's text (or an object with ``.text``); by default the providers' adapters."""
    output = output or ""
    verdicts, judged = [], []
    for raw in assertions:
        try:
            assertion = normalize_assertion(raw)
        except ValidationFailed as exc:  # a stored case written before a rule changed
            reason = "; ".join(m for ms in exc.field_errors.values() for m in ms) or exc.detail
            kind = raw.get("type", "?") if isinstance(raw, dict) else "?"
            verdicts.append(AssertionVerdict(str(kind), None, False, 0.0, f"invalid assertion: {reason}"))
            continue
        if assertion["type"] == "llm_judge":
            judged.append((len(verdicts), assertion))
            verdicts.append(None)
        else:
            verdicts.append(_verdict(assertion, *_check(assertion, output, latency_ms, cost_usd)))
    if judged:
        results = await asyncio.gather(*(_judge(a, output, expected, judge) for _, a in judged))
        for (position, _), verdict in zip(judged, results, strict=True):
            verdicts[position] = verdict
    return verdicts


def _check(a, output, latency_ms, cost_usd):
    """(passed, reason[, details]) for every assertion type but llm_judge."""
    kind, value = a["type"], a.get("value")
    if kind in ("equals", "contains", "not_contains"):
        fold = str.casefold if a["ignore_case"] else str
        text, wanted = fold(output), fold(value)
        how = " (ignoring case)" if a["ignore_case"] else ""
        if kind == "equals":
            ok = text.strip() == wanted.strip()
            return ok, f"the output {'equals' if ok else 'differs from'} {_excerpt(value)}{how}"
        found = wanted in text
        if kind == "contains":
            return found, f"the output {'contains' if found else 'does not contain'} {_excerpt(value)}{how}"
        return not found, f"the output {'contains' if found else 'does not contain'} {_excerpt(value)}{how}"
    if kind == "regex":
        match = compile_regex(value, ignore_case=a["ignore_case"]).search(output)
        seen = f"matches at {match.start()}: {_excerpt(match.group(0))}" if match else "has no match"
        return bool(match) != a["negate"], f"the output {seen} for /{value}/{' (must not match)' * a['negate']}"
    if kind in ("json_schema", "json_path_equals"):
        try:
            document = parse_json_output(output)
        except ValueError as exc:
            return False, f"the output is not JSON: {exc}"
        if kind == "json_schema":
            return _check_schema(value, document)
        try:
            found = resolve_json_path(document, parse_json_path(a["path"]))
        except LookupError as exc:
            return False, f"{a['path']}: {exc}"
        ok = json_equal(found, value)
        wanted = "" if ok else f", not {_excerpt(json.dumps(value))}"
        return ok, f"{a['path']} is {_excerpt(json.dumps(found))}{wanted}"
    measured, unit = (latency_ms, "ms") if kind == "max_latency_ms" else (cost_usd, "USD")
    if measured is None:
        return False, f"no {unit} figure was measured for this answer"
    ok = measured <= value
    return ok, f"{measured:g} {unit} is {'within' if ok else 'over'} the limit of {value:g} {unit}"


def _check_schema(schema, document):
    validator = validator_for(schema, default=Draft202012Validator)(schema)
    try:
        errors = sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    except Unresolvable as exc:
        return False, f"the schema has a $ref that cannot be resolved here: {exc}"
    if not errors:
        return True, "the output matches the schema"
    listed = [f"{e.json_path}: {e.message}" for e in errors[:5]]
    return False, f"the output does not match the schema: {listed[0]}", {"errors": listed, "count": len(errors)}
