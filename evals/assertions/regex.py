"""Regular expressions of ``regex`` assertions, compiled by RE2 (the ``google-re2`` package).

RE2's time is linear in the answer's length whatever the pattern: ``(a|aa)*c`` or ``(a+)+$`` cannot
backtrack. A pattern is at most ``MAX_REGEX`` characters and gets ``REGEX_MAX_MEM`` to be built in;
what RE2 cannot express (backreferences, lookarounds) or cannot build in that budget is refused as a
``ValidationFailed`` naming the field and the reason.
"""

import re

import re2

from core.errors import ValidationFailed

MAX_REGEX = 1_000
REGEX_MAX_MEM = 8 << 20  # RE2's budget for one compiled pattern (a huge {n} is refused, not built)


def compile_regex(pattern, *, ignore_case=False, key="value"):
    """The pattern compiled by RE2, a linear-time engine: no pattern can backtrack, whatever the
    answer. What RE2 cannot express (backreferences, lookarounds) is refused with its reason."""
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = not ignore_case
    options.max_mem = REGEX_MAX_MEM
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        hint = ""
        if any(marker in pattern for marker in ("(?=", "(?!", "(?<=", "(?<!")) or re.search(r"\\[1-9]", pattern):
            hint = " (lookarounds and backreferences are not supported: they need a backtracking engine)"
        message = f"not a valid regular expression for RE2, a linear-time engine: {reason}{hint}"
        raise ValidationFailed(message, field_errors={key: [message]}) from exc
