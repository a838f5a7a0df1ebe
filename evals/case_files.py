"""Cases as files: JSONL (one case a line) and CSV (columns description, vars, expected,
assertions, tags; the structured columns hold JSON; a text cell that a spreadsheet would take for
a formula is written with a leading ``'`` and read back without it). One reader and one writer per
format, used by the API, the browser upload and the downloads alike; what a case must contain is
decided by ``evals.assertions`` when the cases are added."""

import csv
import io
import json

from audit.spreadsheet import safe_cell, unquote

CSV_COLUMNS = ("description", "vars", "expected", "assertions", "tags")


class CaseFileError(ValueError):
    """A file that cannot be read as cases; the message names the line."""


def read_jsonl(text):
    """``(cases, line numbers)`` of a JSONL text; blank lines are skipped."""
    cases, lines = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            cases.append(json.loads(line))
        except ValueError as exc:
            raise CaseFileError(f"line {number}: not valid JSON: {exc}") from exc
        lines.append(number)
    return cases, lines


def read_csv(text):
    """``(cases, line numbers)`` of a CSV text with a header row naming the columns."""
    reader = csv.DictReader(io.StringIO(text))
    missing = {"vars", "assertions"} - set(reader.fieldnames or [])
    if missing:
        raise CaseFileError(
            f"line 1: the header needs the columns {', '.join(CSV_COLUMNS)} (missing: {', '.join(sorted(missing))})"
        )
    cases, lines = [], []
    for row in reader:
        number = reader.line_num
        case = {}
        for column in ("vars", "assertions", "tags"):
            raw = (row.get(column) or "").strip()
            if not raw:
                continue
            try:
                case[column] = json.loads(raw)
            except ValueError as exc:
                raise CaseFileError(f"line {number}: the {column} column is not valid JSON: {exc}") from exc
        if (row.get("description") or "").strip():
            case["description"] = unquote(row["description"].strip())
        if (row.get("expected") or "") != "":
            case["expected"] = unquote(row["expected"])
        case.setdefault("vars", {})
        cases.append(case)
        lines.append(number)
    return cases, lines


def _exportable(case):
    return {
        "description": case.description,
        "vars": case.vars,
        "expected": case.expected,
        "assertions": case.assertions,
        "tags": case.tags,
    }


def write_jsonl(cases):
    return "".join(json.dumps(_exportable(c), ensure_ascii=False) + "\n" for c in cases)


def write_csv(cases):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for case in cases:
        row = _exportable(case)
        writer.writerow(
            [
                safe_cell(row["description"]),
                json.dumps(row["vars"], ensure_ascii=False),
                safe_cell(row["expected"] or ""),
                json.dumps(row["assertions"], ensure_ascii=False),
                json.dumps(row["tags"], ensure_ascii=False),
            ]
        )
    return out.getvalue()
