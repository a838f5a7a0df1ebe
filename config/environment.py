"""Settings read from the environment, typed (environs), with every bad value reported at once.

Each reader returns the variable's value parsed as its type, or its default when it is unset. A
value that does not parse, or falls outside what is allowed, is noted instead of raising at once:
``Environment.check()`` (called at the end of ``config.settings``) then raises one
``ImproperlyConfigured`` listing every such variable, the value it held, what was wrong and what is
allowed, e.g. ``PROMPTLEDGER_EVAL_LEASE_SECONDS='ten': Not a valid integer. Allowed: a whole number
from 5``. Nothing here touches the filesystem or the network.
"""

import ipaddress
import os

from django.core.exceptions import ImproperlyConfigured
from environs import Env, EnvError
from marshmallow.validate import OneOf, Range

_TRUE_FALSE = "true or false (also 1/0, yes/no, on/off)"


def _range_text(kind, minimum, maximum):
    what = "a whole number" if kind == "int" else "a number"
    if minimum is not None and maximum is not None:
        return f"{what} from {minimum} to {maximum}"
    if minimum is not None:
        return f"{what} from {minimum}"
    if maximum is not None:
        return f"{what} up to {maximum}"
    return what


def _networks(value):
    """Comma-separated CIDRs (a bare address is a /32 or /128), normalised; ValueError names the bad one."""
    networks = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError as exc:
            raise ValueError(f"{item!r} is not an address or network") from exc
    return networks


class Environment:
    """The process environment as typed settings; see the module docstring."""

    def __init__(self):
        self._env = Env(expand_vars=False)
        self.problems = []

    def _raw(self, name):
        return os.environ.get(name)

    def _read(self, kind, name, default, allowed, **kwargs):
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            return getattr(self._env, kind)(name, default, **kwargs)
        except EnvError as exc:
            self._note(name, raw, _reason(exc), allowed)
            return default

    def _note(self, name, raw, reason, allowed):
        self.problems.append(f"{name}={raw!r}: {reason}. Allowed: {allowed}")

    def str(self, name, default="", *, choices=None):
        if choices is None:
            return self._read("str", name, default, "any text")
        return self._read("str", name, default, "one of " + ", ".join(choices), validate=OneOf(choices))

    def choice(self, name, default, choices):
        """Text from ``choices``, compared without case or surrounding spaces."""
        raw = self._raw(name)
        if raw is None:
            return default
        value = raw.strip().lower()
        if value not in choices:
            self._note(name, raw, "not a known value", "one of " + ", ".join(choices))
            return default
        return value

    def int(self, name, default, *, minimum=None, maximum=None):
        validate = Range(min=minimum, max=maximum) if (minimum, maximum) != (None, None) else None
        return self._read("int", name, default, _range_text("int", minimum, maximum), validate=validate)

    def float(self, name, default, *, minimum=None, maximum=None):
        validate = Range(min=minimum, max=maximum) if (minimum, maximum) != (None, None) else None
        return self._read("float", name, default, _range_text("float", minimum, maximum), validate=validate)

    def bool(self, name, default):
        return self._read("bool", name, default, _TRUE_FALSE)

    def list(self, name, default=""):
        """Comma-separated text, items stripped, empty items dropped."""
        raw = self._raw(name)
        text = default if raw is None else raw
        return [item.strip() for item in text.split(",") if item.strip()]

    def networks(self, name):
        """Comma-separated IP networks in CIDR form (``10.0.0.0/8,192.168.5.7``), as normalised strings."""
        raw = self._raw(name)
        if not raw:
            return []
        try:
            return _networks(raw)
        except ValueError as exc:
            self._note(name, raw, str(exc), "comma-separated addresses or CIDR networks, e.g. 10.0.0.0/8,192.168.5.7")
            return []

    def require(self, condition, name, reason, allowed):
        """Note a rule between values that the type alone does not express."""
        if not condition:
            self._note(name, self._raw(name) or "", reason, allowed)

    def check(self):
        """Raise one ImproperlyConfigured naming every bad variable, if any."""
        if self.problems:
            lines = "\n".join(f"  - {problem}" for problem in self.problems)
            raise ImproperlyConfigured(
                f"{len(self.problems)} environment variable(s) cannot be used:\n{lines}"
            )


def _reason(exc):
    """environs' message without its ``Environment variable "X" invalid:`` prefix and list brackets."""
    text = str(exc)
    if "invalid:" in text:
        text = text.split("invalid:", 1)[1].strip()
    text = text.strip("[]{}").strip().strip("'\"").rstrip(".")
    return text
