"""Input checks shared by the registry's services (one place for each rule)."""

import re

from django.contrib.auth import get_user_model

from ..errors import ValidationFailed
from ..models import SLUG_PATTERN

_slug = re.compile(SLUG_PATTERN)


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
