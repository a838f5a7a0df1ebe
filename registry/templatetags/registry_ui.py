"""Small presentation helpers for the registry's pages: tier badges, labels, short hashes, and
form inputs wired to their help and error text for screen readers."""

import json

from django import template
from django.utils.html import format_html

register = template.Library()

TIER_MEANING = {0: "most critical", 1: "critical", 2: "standard", 3: "low risk"}
SHORT_LABELS = {"pii", "phi", "pci"}


@register.simple_tag
def tier_badge(tier):
    return format_html(
        '<span class="badge tier tier-{0}" title="Tier {0}: {1}">Tier {0}</span>', tier, TIER_MEANING.get(tier, "")
    )


@register.filter
def category_label(value):
    return value.upper() if value in SHORT_LABELS else value.replace("-", " ").capitalize()


@register.filter
def short_hash(value, length=12):
    return (value or "")[: int(length)]


@register.simple_tag
def field_input(field, **attrs):
    """The field's widget with ``aria-describedby`` pointing at its help and its errors."""
    described = []
    if field.help_text:
        described.append(f"{field.auto_id}_help")
    if field.errors:
        described.append(f"{field.auto_id}_errors")
        attrs["aria-invalid"] = "true"
    if described:
        attrs["aria-describedby"] = " ".join(described)
    return field.as_widget(attrs=attrs)


@register.simple_tag
def page_query(query, number):
    """``?<filters>&page=N`` keeping the current filters."""
    return f"?{query}&page={number}" if query else f"?page={number}"


@register.simple_tag
def inline_diff(old, new):
    """``(old_html, new_html)`` with the changed characters of a replaced line wrapped in
    ``<del>``/``<ins>``, so a one-word edit in a long line is easy to spot."""
    from difflib import SequenceMatcher

    from django.utils.html import escape
    from django.utils.safestring import mark_safe

    left, right = [], []
    for tag, i1, i2, j1, j2 in SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        a, b = escape(old[i1:i2]), escape(new[j1:j2])
        if tag == "equal":
            left.append(a)
            right.append(b)
            continue
        if a:
            left.append(f"<del>{a}</del>")
        if b:
            right.append(f"<ins>{b}</ins>")
    return mark_safe("".join(left)), mark_safe("".join(right))  # noqa: S308 - every piece is escaped


@register.filter
def json_value(value):
    """A value as its JSON literal (``false``, ``null``, ``"text"``), the way prompts declare it."""
    return json.dumps(value, ensure_ascii=False)
