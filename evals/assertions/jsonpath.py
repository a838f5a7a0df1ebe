"""JSON in answers: ``parse_json_output`` reads the whole answer as JSON, allowing one surrounding
Markdown code fence; ``parse_json_path`` and ``resolve_json_path`` walk the JSONPath subset that
``json_path_equals`` understands; ``json_equal`` compares as JSON does.

The subset is ``$`` followed by ``.key``, ``[index]`` (negative counts from the end) and ``['key']`` /
``["key"]`` (no quotes or backslashes inside): no wildcards, filters, slices or recursive descent. An
unsupported path is a ``ValueError`` naming the part; a path the document lacks, a ``LookupError``
naming where the walk stopped.
"""

import json
import re

_JSON_PATH_SEGMENT = re.compile(r"""\.([A-Za-z_][A-Za-z0-9_-]*)|\[(-?\d+)\]|\['([^'\\]*)'\]|\["([^"\\]*)"\]""")
_FENCE = re.compile(r"^```[A-Za-z0-9_-]*[ \t]*\n(.*?)\n?```$", re.DOTALL)


def parse_json_path(path):
    """``"$.a['b c'][0]"`` → ``["a", "b c", 0]``; ValueError naming the unsupported part."""
    if not isinstance(path, str) or not path.startswith("$") or len(path) > 500:
        raise ValueError("a path is a string starting with $, e.g. $.items[0].name")
    parts, position = [], 1
    while position < len(path):
        match = _JSON_PATH_SEGMENT.match(path, position)
        if not match:
            raise ValueError(
                f"unsupported syntax at character {position} ({path[position : position + 12]!r}); "
                "supported: $ then .key, [index], ['key']"
            )
        name, index, single, double = match.groups()
        parts.append(int(index) if index is not None else next(p for p in (name, single, double) if p is not None))
        position = match.end()
    return parts


def parse_json_output(output):
    """The answer as JSON, allowing one surrounding Markdown code fence."""
    text = output.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from exc


def resolve_json_path(document, parts):
    current, where = document, "$"
    for part in parts:
        if isinstance(part, int):
            if not isinstance(current, list):
                raise LookupError(f"{where} is not an array")
            if not -len(current) <= part < len(current):
                raise LookupError(f"{where} has {len(current)} items, no index {part}")
            current, where = current[part], f"{where}[{part}]"
        else:
            if not isinstance(current, dict):
                raise LookupError(f"{where} is not an object")
            if part not in current:
                raise LookupError(f"{where} has no key {part!r}")
            current, where = current[part], f"{where}[{part!r}]"
    return current


def json_equal(a, b):
    """JSON equality: true is not 1, 1 equals 1.0, objects ignore key order."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b
