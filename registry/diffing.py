"""Differences between two prompt versions: one unified text diff, a diff per message, and rows
for a side-by-side view; and ``word_diff``, the changed words of two texts (eval outputs)."""

import difflib
import json
import re


def version_text(version):
    """A version as reviewable text: each message under its role, then variables and model."""
    parts = []
    for index, message in enumerate(version.messages):
        parts.append(f"### message {index + 1} ({message['role']})")
        parts.extend(message["content"].splitlines() or [""])
    parts.append("### variables")
    parts.extend(json.dumps(version.variables, indent=2, sort_keys=True).splitlines())
    parts.append("### model")
    parts.extend(json.dumps(version.model_config, indent=2, sort_keys=True).splitlines())
    return parts


def unified(old, new, *, context=3):
    return "\n".join(
        difflib.unified_diff(
            version_text(old),
            version_text(new),
            fromfile=f"v{old.number}",
            tofile=f"v{new.number}",
            lineterm="",
            n=context,
        )
    )


def per_message(old, new):
    rows = []
    for index in range(max(len(old.messages), len(new.messages))):
        before = old.messages[index] if index < len(old.messages) else None
        after = new.messages[index] if index < len(new.messages) else None
        if before is None:
            status = "added"
        elif after is None:
            status = "removed"
        elif before == after:
            status = "unchanged"
        else:
            status = "changed"
        diff = "\n".join(
            difflib.unified_diff(
                (before or {}).get("content", "").splitlines(),
                (after or {}).get("content", "").splitlines(),
                fromfile=f"v{old.number}",
                tofile=f"v{new.number}",
                lineterm="",
            )
        )
        rows.append(
            {
                "index": index,
                "status": status,
                "role_before": before and before["role"],
                "role_after": after and after["role"],
                "diff": diff,
            }
        )
    return rows


def side_by_side(old, new):
    """Rows of ``(kind, left_no, left, right_no, right)`` where kind is equal/replace/delete/insert."""
    left, right = version_text(old), version_text(new)
    rows = []
    matcher = difflib.SequenceMatcher(a=left, b=right, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            rows.extend(
                ("equal", i + 1, left[i], j + 1, right[j]) for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
            )
            continue
        span = max(i2 - i1, j2 - j1)
        for k in range(span):
            li, rj = i1 + k, j1 + k
            has_l, has_r = li < i2, rj < j2
            kind = "replace" if has_l and has_r else ("delete" if has_l else "insert")
            rows.append(
                (
                    kind,
                    li + 1 if has_l else None,
                    left[li] if has_l else "",
                    rj + 1 if has_r else None,
                    right[rj] if has_r else "",
                )
            )
    return rows


_WORD = re.compile(r"\s+|\w+|[^\w\s]")
WORD_DIFF_LIMIT = 10_000  # characters per text: past this a page shows the texts without a diff


def word_diff(old, new):
    """The words that changed between two texts, as two lists of ``(kind, text)`` segments: the old
    text's (kind ``equal`` or ``delete``) and the new text's (``equal`` or ``insert``). Joined, each
    list gives its text back. None when either text is longer than ``WORD_DIFF_LIMIT``."""
    if len(old) > WORD_DIFF_LIMIT or len(new) > WORD_DIFF_LIMIT:
        return None
    a, b = _WORD.findall(old), _WORD.findall(new)
    left, right = [], []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            left.append(("equal", "".join(a[i1:i2])))
            right.append(("equal", "".join(b[j1:j2])))
            continue
        if i2 > i1:
            left.append(("delete", "".join(a[i1:i2])))
        if j2 > j1:
            right.append(("insert", "".join(b[j1:j2])))
    return left, right
