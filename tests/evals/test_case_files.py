"""Case files: what a spreadsheet would evaluate is written as text, and reads back unchanged."""

import csv
import io

from audit.spreadsheet import safe_cell, unquote
from evals import case_files
from evals.models import Case

TRICKY = ["=1+2", "+44 20 7946 0000", "-5", "@SUM(A1)", "\tx", "'=x", "''@y", "plain", "'quoted", ""]


def test_every_cell_reads_back_as_it_was_written():
    for value in TRICKY:
        assert unquote(safe_cell(value)) == value
    assert [safe_cell(v)[:1] for v in TRICKY[:5]] == ["'"] * 5


def test_a_cases_csv_has_no_formula_and_round_trips():
    cases = [
        Case(description=d, vars={"name": "A"}, expected=e, assertions=[{"type": "contains", "value": "A"}], tags=[])
        for d, e in [("=cmd|' /C calc'!A0", "-1"), ("'=kept", "@home"), ("fine", None)]
    ]
    text = case_files.write_csv(cases)
    cells = [cell for row in list(csv.reader(io.StringIO(text)))[1:] for cell in row]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@")]
    read, _ = case_files.read_csv(text)
    assert [(c["description"], c.get("expected")) for c in read] == [
        ("=cmd|' /C calc'!A0", "-1"), ("'=kept", "@home"), ("fine", None),
    ]
