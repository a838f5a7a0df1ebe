"""The risk tier: 0 is the most critical, 3 the least. One type and one check, so the range is
written once (the model's choices, services, API filters, forms and policies all use it)."""

from enum import IntEnum

from .errors import ValidationFailed


class Tier(IntEnum):
    CRITICAL = 0
    HIGH = 1
    MODERATE = 2
    LOW = 3

    @property
    def label(self):
        return f"Tier {self.value}"


TIERS = tuple(Tier)
ALLOWED = "an integer from 0 (most critical) to 3"


def check_tier(value, field="tier"):
    """``value`` (an int, as services take it) as a ``Tier``, or a 400 ``invalid_tier`` naming the
    field; booleans, text and other numbers are refused."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in Tier._value2member_map_:
        raise ValidationFailed(f"tier {value!r} is out of range", code="invalid_tier", field_errors={field: [ALLOWED]})
    return Tier(value)


def parse_tier(text, field="tier"):
    """A tier written as text (a query string, a form field), checked the same way."""
    text = (text or "").strip()
    return check_tier(int(text) if text.isdigit() else text, field)
