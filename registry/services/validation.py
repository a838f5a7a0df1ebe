"""Input checks shared by the registry's services (one place for each rule)."""

import re

from django.contrib.auth import get_user_model

from core.errors import ValidationFailed

from ..models import SLUG_PATTERN

_slug = re.compile(SLUG_PATTERN)
# What PostgreSQL cannot store in text or jsonb: NUL, and UTF-16 surrogates (a lone "\ud800"
# escape in JSON decodes to one; there is no UTF-8 for it).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_ADVICE = (
    "contains a character that cannot be stored (NUL \\u0000, or an unpaired surrogate \\ud800-\\udfff); "
    "remove it"
)


def unstorable(value, path=""):
    """The path (``model.params.note``, ``messages[0].content``) of the first string in ``value``,
    a key or a value at any depth, that PostgreSQL cannot store; None when there is none."""
    stack = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                return where
        elif isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                key_name = storable_text(str(key))
                name = f"{where}.{key_name}" if where else key_name
                if isinstance(key, str) and _UNSTORABLE.search(key):
                    return name
                stack.append((name, child))
        elif isinstance(item, list | tuple):
            stack.extend((f"{where}[{index}]", child) for index, child in reversed(list(enumerate(item))))
    return None


def check_storable(value, field=""):
    """Refuse ``value`` with a 400 naming the field when some string in it cannot be stored."""
    where = unstorable(value, field)
    if where is not None:
        raise ValidationFailed(
            f"{where or 'the body'}: {UNSTORABLE_ADVICE}",
            code="unstorable_text",
            field_errors={where or "non_field_errors": [UNSTORABLE_ADVICE]},
        )
    return value


def storable_text(text):
    """``text`` with what cannot be stored replaced by U+FFFD: for what Promptledger records from
    outside without a person to tell (a provider's answer, an error message)."""
    return _UNSTORABLE.sub("\ufffd", text) if isinstance(text, str) else text


def storable_copy(value):
    """``value`` (JSON-like) with ``storable_text`` applied to every string, keys included."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable_text(k): storable_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable_copy(v) for v in value]
    return value


def check_slug(value, field="slug", max_length=100):
    if not isinstance(value, str) or not value:
        raise ValidationFailed(f"{field} is required", field_errors={field: ["this field is required"]})
    if len(value) > max_length or not _slug.match(value):
        raise ValidationFailed(
            f"'{value}' is not a valid {field}",
            code="invalid_slug",
            field_errors={
                field: [
                    f"use lowercase letters, digits and single hyphens (e.g. 'loan-letter'), "
                    f"at most {max_length} characters"
                ]
            },
        )
    return value


def check_text(value, field, *, required=True, max_length=200):
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValidationFailed(f"{field} is required", field_errors={field: ["this field is required"]})
        return ""
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} must be text", field_errors={field: ["expected a string"]})
    check_storable(value, field)
    if len(value) > max_length:
        raise ValidationFailed(
            f"{field} is too long", field_errors={field: [f"at most {max_length} characters, got {len(value)}"]}
        )
    return value.strip()


def check_labels(values, field, *, allowed=None, max_items=20):
    """A list of distinct slug-like labels, normalized to lowercase and sorted."""
    if values is None:
        return []
    if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
        raise ValidationFailed(
            f"{field} must be a list of strings", field_errors={field: ["expected a list of strings"]}
        )
    clean = sorted({v.strip().lower() for v in values if v.strip()})
    if len(clean) > max_items:
        raise ValidationFailed(f"too many {field}", field_errors={field: [f"at most {max_items} items"]})
    for value in clean:
        if len(value) > 50 or not _slug.match(value):
            raise ValidationFailed(
                f"'{value}' is not a valid label",
                field_errors={field: [f"'{value}': use lowercase letters, digits, hyphens"]},
            )
        if allowed is not None and value not in allowed:
            raise ValidationFailed(
                f"'{value}' is not a known {field[:-1] if field.endswith('s') else field}",
                field_errors={field: [f"'{value}' is not allowed; allowed: {', '.join(allowed)}"]},
            )
    return clean


def get_active_user(username, field):
    if not isinstance(username, str) or not username:
        raise ValidationFailed(f"{field} is required", field_errors={field: ["a username is required"]})
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise ValidationFailed(
            f"no active user '{username}'", code="unknown_user", field_errors={field: [f"no active user '{username}'"]}
        )
    return user


def check_choice(value, field, choices):
    if value not in choices:
        raise ValidationFailed(
            f"'{value}' is not a valid {field}",
            field_errors={field: [f"'{value}' is not allowed; allowed: {', '.join(map(str, choices))}"]},
        )
    return value
