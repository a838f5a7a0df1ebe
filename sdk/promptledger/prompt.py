"""``Prompt``: the version of a prompt deployed to an environment, as ``Client.get_prompt`` gives it.

One ``Prompt`` is shared by every caller the cache answers, so its messages, variables and model
are read-only (a ``dict``/``list`` that refuses changes, still JSON-serializable and ``**``-able):
a caller appending to ``messages`` gets a ``TypeError`` instead of changing what everyone else is
served. ``render`` applies the server's own template rules (``promptledger.templates``) and
returns fresh lists.
"""

import copy
from dataclasses import dataclass, replace

from . import templates
from .errors import ConfigurationError, RenderError

_SHARED = "a prompt from get_prompt is shared by every caller: copy it (copy.deepcopy) to change it"


def _refuse(self, *args, **kwargs):
    raise TypeError(_SHARED)


class ReadOnlyDict(dict):
    """A ``dict`` that refuses changes; copies of it are plain dicts."""

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse

    def __copy__(self):
        return dict(self)

    def __deepcopy__(self, memo):
        return {key: copy.deepcopy(value, memo) for key, value in self.items()}

    def __reduce__(self):
        return dict, (dict(self),)


class ReadOnlyList(list):
    """A ``list`` that refuses changes; copies of it are plain lists."""

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = remove = pop = clear = sort = reverse = _refuse

    def __copy__(self):
        return list(self)

    def __deepcopy__(self, memo):
        return [copy.deepcopy(value, memo) for value in self]

    def __reduce__(self):
        return list, (list(self),)


def read_only(value):
    """``value`` (decoded JSON) with every dict and list in it made read-only."""
    if isinstance(value, dict):
        return ReadOnlyDict((key, read_only(item)) for key, item in value.items())
    if isinstance(value, list):
        return ReadOnlyList(read_only(item) for item in value)
    return value


@dataclass(frozen=True, slots=True)
class Prompt:
    """A deployed version. ``source`` says where this copy came from: ``"server"`` (fetched, or
    revalidated, from the server), ``"disk"`` (the last-known-good copy, while the server is
    unreachable) or ``"fallback"`` (the caller's own, when nothing was ever cached). ``number`` and
    ``content_hash`` are ``None`` for a fallback."""

    slug: str
    environment: str
    number: int | None
    content_hash: str | None
    messages: list
    variables: dict
    model: dict
    canary: bool = False
    source: str = "server"

    @classmethod
    def from_resolve(cls, data, *, source="server"):
        """A ``Prompt`` from a resolve answer's JSON body."""
        return cls(
            slug=data["slug"],
            environment=data["environment"],
            number=data["version"],
            content_hash=data["content_hash"],
            messages=read_only(data["messages"]),
            variables=read_only(data.get("variables") or {}),
            model=read_only(data.get("model") or {}),
            canary=bool(data.get("canary")),
            source=source,
        )

    @classmethod
    def from_fallback(cls, slug, environment, fallback):
        """The caller's fallback as a ``Prompt``: a ``Prompt``, or a mapping with ``messages`` and
        optional ``variables`` and ``model`` (as in a version). It is checked by the same template
        rules as a version, so a fallback that could never render is refused loudly."""
        if isinstance(fallback, Prompt):
            return replace(fallback, slug=slug, environment=environment, source="fallback")
        if not isinstance(fallback, dict) or "messages" not in fallback:
            raise ConfigurationError("a fallback is a Prompt or a mapping with 'messages' (and 'variables', 'model')")
        try:
            declared = templates.normalize_variables(fallback.get("variables"))
            templates.check_messages(fallback["messages"], declared)
        except templates.TemplateError as exc:
            raise ConfigurationError(f"the fallback for '{slug}' is not a valid prompt: {exc.detail} "
                                     f"{exc.field_errors}") from exc
        return cls(
            slug=slug,
            environment=environment,
            number=None,
            content_hash=None,
            messages=read_only(fallback["messages"]),
            variables=read_only(declared),
            model=read_only(fallback.get("model") or {}),
            source="fallback",
        )

    def render(self, **variables):
        """The messages with ``variables`` filled in, as a new ``[{"role", "content"}, ...]``.

        The same checks as the server's render endpoint, by the same code: a missing, mistyped or
        undeclared variable, or a template the sandbox stops, raises ``RenderError`` naming it."""
        try:
            return templates.render(self.messages, self.variables, variables)
        except templates.TemplateError as exc:
            raise RenderError(exc.detail, code=exc.code, field_errors=exc.field_errors) from exc
