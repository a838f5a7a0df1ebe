"""Prompt templates: Jinja2's sandbox with strict undefined variables, with no Django in sight.

This is the one place the template rules live: the server (``registry.rendering``) and the client
(``promptledger.client.Prompt.render``) both call it, so a version renders, or is refused, the same
way on both sides. ``check_messages`` refuses a template with a syntax error or one that uses a
variable it does not declare, naming the message, the line and the variable; ``render`` checks the
values given against the declarations (missing, mistyped, undeclared) before rendering. Nothing
here evaluates user input as Python. Every refusal is a ``TemplateError`` carrying a stable
``code`` and the fields at fault.

Rendering has a budget, the same wherever it runs (the API's render, the eval worker, the client
library), because a template is input from whoever may push a version: at most
``MAX_RENDER_SECONDS`` of time, ``MAX_OUTPUT_CHARS`` of output, ``MAX_LOOP_ITERATIONS`` turns of
``{% for %}`` loops in all, operands of ``*`` and ``**`` that stay within the output limit, and no deeper
recursion than Python allows. Past a limit, ``TemplateError`` with code ``template_too_expensive``
names the limit and the message.
"""

import functools
import re
import threading
import time

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment, SecurityError

ROLES = ("system", "user", "assistant")
TYPES = ("string", "number", "integer", "boolean", "object", "array")
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DECLARATION_KEYS = {"type", "required", "default", "description"}
DEFAULT_MAX_TEMPLATE_BYTES = 100 * 1024

MAX_RENDER_SECONDS = 1.0
MAX_OUTPUT_CHARS = 1_000_000
MAX_LOOP_ITERATIONS = 100_000
MAX_POWER_EXPONENT = 1_000


_COUNTER = "__promptledger_counted"


class BudgetExceeded(Exception):
    """A render went past one of the limits above; the message says which."""


_budget = threading.local()


def _counted(iterable):
    """What every ``{% for %}`` iterates through (see ``_BudgetedEnvironment._generate``)."""
    for item in iterable:
        _budget.iterations += 1
        if _budget.iterations > MAX_LOOP_ITERATIONS:
            raise BudgetExceeded(f"more than {MAX_LOOP_ITERATIONS:,} loop iterations")
        if _budget.iterations % 1024 == 0:
            _check_time()
        yield item


def _check_time():
    if time.monotonic() > _budget.deadline:
        raise BudgetExceeded(f"more than {MAX_RENDER_SECONDS:g} s of rendering")


def _size(value):
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


class _BudgetedEnvironment(SandboxedEnvironment):
    """Jinja's sandbox, plus the render budget: ``*`` and ``**`` are checked before they run,
    every call checks the clock, and every loop counts its turns."""

    intercepted_binops = frozenset(["*", "**"])

    def _generate(self, source, name, filename, defer_init=False):
        # Compiling (not parsing: check_messages reads the plain tree): each loop's iterable is
        # wrapped in the counter, so a loop that writes nothing and calls nothing is still bounded.
        if isinstance(source, nodes.Template):
            for loop in source.find_all(nodes.For):
                loop.iter = nodes.Call(nodes.Name(_COUNTER, "load"), [loop.iter], [], None, None)
        return super()._generate(source, name, filename, defer_init=defer_init)

    def call_binop(self, context, operator, left, right):
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                size = _size(sequence)
                if size is not None and isinstance(count, int) and size * count > MAX_OUTPUT_CHARS:
                    raise BudgetExceeded(f"a repetition of {size * count:,} items (at most {MAX_OUTPUT_CHARS:,})")
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_POWER_EXPONENT:
            raise BudgetExceeded(f"a power with an exponent above {MAX_POWER_EXPONENT:,}")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - Jinja's signature
        _check_time()
        return super().call(__context, __obj, *args, **kwargs)


_env = _BudgetedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_env.globals[_COUNTER] = _counted

# What makes text a template for this environment: its three default delimiters, and a carriage
# return (which its lexer turns into "\n"). Text without any of them renders as itself (there is no
# line-statement prefix, and trailing newlines are kept).
_TEMPLATE_MARKS = ("{{", "{%", "{#", "\r")


# Compiling is ~20x the cost of rendering; an eval run renders the same templates for every case.
@functools.lru_cache(maxsize=256)
def _plan(content):
    """How to render ``content``: the text itself when it holds no template syntax, else its
    compiled template with the template's globals as a plain dict. Rendering through
    ``new_context(..., shared=True)`` with that dict is what ``Template.generate`` does with a
    fresh copy of the globals per call (most of the cost of rendering a short message)."""
    if not any(mark in content for mark in _TEMPLATE_MARKS):
        return content
    template = _env.from_string(content)
    return template, dict(template.globals)


class TemplateError(Exception):
    """A template or its variables were refused: ``detail``, ``code`` (``invalid`` or
    ``render_error``) and ``field_errors`` (``{"variables.name": ["..."]}``)."""

    def __init__(self, detail, *, code="invalid", field_errors=None):
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.field_errors = field_errors or {}


def _type_ok(kind, value):
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    return False


def normalize_variables(declared):
    """Return declarations in their full form ``{name: {type, required, default?, description?}}``."""
    if declared is None:
        return {}
    if not isinstance(declared, dict):
        raise TemplateError(
            "variables must be an object of name → declaration",
            field_errors={"variables": ['expected an object such as {"name": {"type": "string"}}']},
        )
    errors, out = {}, {}
    for name, spec in declared.items():
        key = f"variables.{name}"
        if not isinstance(name, str) or not VARIABLE_NAME.match(name):
            errors[key] = ["a variable name is letters, digits and underscores, not starting with a digit"]
            continue
        if not isinstance(spec, dict):
            errors[key] = ['a declaration is an object such as {"type": "string", "required": true}']
            continue
        unknown = set(spec) - DECLARATION_KEYS
        if unknown:
            errors[key] = [f"unknown keys {sorted(unknown)}; allowed: {sorted(DECLARATION_KEYS)}"]
            continue
        kind = spec.get("type", "string")
        if kind not in TYPES:
            errors[f"{key}.type"] = [f"'{kind}' is not a type; allowed: {', '.join(TYPES)}"]
            continue
        required = spec.get("required", "default" not in spec)
        if not isinstance(required, bool):
            errors[f"{key}.required"] = ["required is true or false"]
            continue
        clean = {"type": kind, "required": required}
        if "default" in spec:
            if not _type_ok(kind, spec["default"]):
                errors[f"{key}.default"] = [f"the default must be of type {kind}"]
                continue
            clean["default"] = spec["default"]
        if spec.get("description"):
            clean["description"] = str(spec["description"])
        out[name] = clean
    if errors:
        raise TemplateError("some variable declarations are invalid", field_errors=errors)
    return out


def _names_with_lines(ast):
    """Each loaded variable name with the first line it appears on."""
    lines = {}
    for node in ast.find_all(nodes.Name):
        if node.ctx == "load":
            lines.setdefault(node.name, node.lineno)
    return lines


def check_messages(messages, declared, *, max_bytes=DEFAULT_MAX_TEMPLATE_BYTES):
    """Validate message shape and every template in it against the declared variables."""
    if not isinstance(messages, list) or not messages:
        raise TemplateError(
            "messages must be a non-empty list",
            field_errors={"messages": ['expected a list such as [{"role": "system", "content": "..."}]']},
        )
    errors, total = {}, 0
    for index, message in enumerate(messages):
        key = f"messages[{index}]"
        if not isinstance(message, dict) or set(message) - {"role", "content"}:
            errors[key] = ['each message is {"role": ..., "content": ...} and nothing else']
            continue
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            errors[f"{key}.role"] = [f"'{role}' is not a role; allowed: {', '.join(ROLES)}"]
        if not isinstance(content, str) or not content.strip():
            errors[f"{key}.content"] = ["content is a non-empty string"]
            continue
        size = len(content.encode("utf-8"))
        total += size
        if size > max_bytes:
            errors[f"{key}.content"] = [f"the template is {size} bytes; the limit is {max_bytes} bytes"]
            continue
        try:
            ast = _env.parse(content)
        except TemplateSyntaxError as exc:
            errors[f"{key}.content"] = [f"line {exc.lineno}: template syntax error: {exc.message}"]
            continue
        undeclared = meta.find_undeclared_variables(ast) - set(declared)
        if undeclared:
            lines = _names_with_lines(ast)
            allowed = ", ".join(sorted(declared)) or "none declared"
            errors[f"{key}.content"] = [
                f"line {lines.get(name, 1)}: '{name}' is not a declared variable (declared: {allowed})"
                for name in sorted(undeclared, key=lambda n: (lines.get(n, 1), n))
            ]
    if not errors and total > max_bytes:
        errors["messages"] = [f"the templates add up to {total} bytes; the limit is {max_bytes} bytes"]
    if errors:
        raise TemplateError("the messages are not valid templates", field_errors=errors)


def check_values(declared, values):
    """Return the values to render with (defaults applied) or raise naming each bad variable."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise TemplateError("variables must be an object", field_errors={"variables": ["expected an object"]})
    errors, out = {}, {}
    for name in values:
        if name not in declared:
            allowed = ", ".join(sorted(declared)) or "none"
            errors[f"variables.{name}"] = [f"'{name}' is not declared by this version (declared: {allowed})"]
    for name, spec in declared.items():
        if name in values:
            value = values[name]
            if value is None and not spec["required"]:
                continue
            if not _type_ok(spec["type"], value):
                errors[f"variables.{name}"] = [f"'{name}' must be of type {spec['type']}, got {_json_type(value)}"]
                continue
            out[name] = value
        elif "default" in spec:
            out[name] = spec["default"]
        elif spec["required"]:
            errors[f"variables.{name}"] = [f"'{name}' is required ({spec['type']})"]
    if errors:
        raise TemplateError("the variables do not match the declarations", field_errors=errors)
    return out


def _json_type(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _render_within_budget(content, context):
    plan = _plan(content)
    if isinstance(plan, str):
        parts = (plan,)
    else:
        template, template_globals = plan
        parts = template.root_render_func(template.new_context({**template_globals, **context}, shared=True))
    return _within_output_budget(parts)


def _within_output_budget(parts):
    """Join rendered parts, refusing past the output budget and checking the clock between them."""
    pieces, size = [], 0
    for part in parts:
        size += len(part)
        if size > _budget.output_left:
            raise BudgetExceeded(f"more than {MAX_OUTPUT_CHARS:,} characters of output")
        pieces.append(part)
        _check_time()
    _budget.output_left -= size
    return "".join(pieces)


def render(messages, declared, values):
    """Render every message with checked values, within the budget (one budget for all the
    messages); an error while rendering names the message."""
    context = check_values(declared, values)
    rendered = []
    _budget.deadline, _budget.iterations = time.monotonic() + MAX_RENDER_SECONDS, 0
    _budget.output_left = MAX_OUTPUT_CHARS
    for index, message in enumerate(messages):
        field = f"messages[{index}].content"
        try:
            content = _render_within_budget(message["content"], context)
        except BudgetExceeded as exc:
            raise TemplateError(
                f"message {index}: the template is too expensive to render: {exc}",
                code="template_too_expensive",
                field_errors={field: [f"rendering stopped: {exc}"]},
            ) from None
        except RecursionError:
            raise TemplateError(
                f"message {index}: the template is too expensive to render: it recurses too deeply",
                code="template_too_expensive",
                field_errors={field: ["rendering stopped: recursion too deep (a macro calling itself?)"]},
            ) from None
        except UndefinedError as exc:
            raise TemplateError(
                f"message {index}: {exc.message}", code="render_error", field_errors={field: [str(exc.message)]}
            ) from exc
        except SecurityError as exc:
            raise TemplateError(
                f"message {index}: the template tried something the sandbox forbids",
                code="render_error",
                field_errors={field: [str(exc)]},
            ) from exc
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise TemplateError(
                f"message {index}: rendering failed: {exc}", code="render_error", field_errors={field: [str(exc)]}
            ) from exc
        rendered.append({"role": message["role"], "content": content})
    return rendered
