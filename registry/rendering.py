"""Prompt templates on the server: the rules of ``promptledger.templates``, refusals as domain errors.

The rules themselves (Jinja2's sandbox, strict undefined variables, declarations and value checks)
live in ``promptledger.templates``, which the client package renders with too, so a version
renders the same way on both sides. This module only adds the server's template size limit and
turns each ``TemplateError`` into a ``ValidationFailed`` with the same code and fields.
"""

from functools import wraps

from django.conf import settings

from core.errors import ValidationFailed
from promptledger import templates
from promptledger.templates import DECLARATION_KEYS, ROLES, TYPES, VARIABLE_NAME, TemplateError

__all__ = [
    "DECLARATION_KEYS", "ROLES", "TYPES", "VARIABLE_NAME",
    "check_messages", "check_values", "normalize_variables", "render",
]


def _as_domain_error(function):
    @wraps(function)
    def call(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except TemplateError as exc:
            raise ValidationFailed(exc.detail, code=exc.code, field_errors=exc.field_errors) from exc

    return call


normalize_variables = _as_domain_error(templates.normalize_variables)
check_values = _as_domain_error(templates.check_values)
render = _as_domain_error(templates.render)


@_as_domain_error
def check_messages(messages, declared):
    """Validate message shape and every template in it against the declared variables, with the
    size limit of ``PROMPTLEDGER_MAX_TEMPLATE_BYTES``."""
    templates.check_messages(messages, declared, max_bytes=settings.PROMPTLEDGER_MAX_TEMPLATE_BYTES)
