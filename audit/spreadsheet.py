"""Cells of exported CSV files, made safe for spreadsheets (OWASP's rule for CSV injection).

A cell that a spreadsheet would read as a formula (it starts with ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return) gets a leading ``'``, which spreadsheets show as text. So that a file
written here reads back to exactly what was written (cases go out and come back in), a cell that
already starts with quotes before such a character gets one more, and ``unquote`` takes one off.
Used by every CSV export: the audit trail and a suite's cases.
"""

import re

_FORMULA = re.compile(r"'*[=+\-@\t\r]")


def safe_cell(value):
    """``value`` as a CSV cell no spreadsheet will evaluate (non-strings are left alone)."""
    if isinstance(value, str) and _FORMULA.match(value):
        return "'" + value
    return value


def unquote(value):
    """What ``safe_cell`` was given, from what it wrote."""
    if isinstance(value, str) and value.startswith("'") and _FORMULA.match(value[1:]):
        return value[1:]
    return value
