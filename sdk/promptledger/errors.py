"""What can go wrong talking to Promptledger, one class per kind, so callers catch what they can
handle. ``promptledger.client`` re-exports every class; import them from there.

The server's refusals (``APIError`` and its subclasses) carry its status, stable ``code``,
``detail`` and ``field_errors``; ``ConnectionFailed`` means no answer at all.
"""


class PromptledgerError(Exception):
    """Anything that went wrong talking to Promptledger. ``exit_code`` is what the CLI exits with."""

    exit_code = 2

    def __init__(self, detail):
        super().__init__(detail)
        self.detail = detail


class ConfigurationError(PromptledgerError):
    """The client cannot start: no server URL, or one it will not use."""


class ConnectionFailed(PromptledgerError):
    """No answer from the server (refused, DNS, TLS, timeout)."""


class PromptUnavailable(ConnectionFailed):
    """``get_prompt`` has nothing to give: the server did not answer, no copy of the prompt was
    ever cached (in memory or on disk), and no ``fallback`` was passed. The message names the
    prompt, the environment, the server and why."""

    def __init__(self, detail, *, slug, environment):
        super().__init__(detail)
        self.slug, self.environment = slug, environment


class RenderError(PromptledgerError):
    """``Prompt.render`` refused the variables (missing, mistyped, undeclared) or the template
    failed; ``code`` and ``field_errors`` are those the server's render endpoint would answer."""

    exit_code = 1

    def __init__(self, detail, *, code="invalid", field_errors=None):
        super().__init__(detail)
        self.code = code
        self.field_errors = field_errors or {}


class APIError(PromptledgerError):
    """The server answered with an error: its status, ``code``, ``detail`` and ``field_errors``."""

    exit_code = 1

    def __init__(self, status, code, detail, field_errors=None):
        super().__init__(detail)
        self.status = status
        self.code = code
        self.field_errors = field_errors or {}

    def __str__(self):
        return f"{self.detail} ({self.code}, HTTP {self.status})"

    def again(self):
        """A new exception like this one, to raise a remembered answer again from another thread."""
        return type(self)(self.status, self.code, self.detail, self.field_errors)


class BadRequest(APIError):
    """400: the request was refused as invalid; ``field_errors`` names each field."""


class Unauthorized(APIError):
    """401: no token, or a token that is invalid, revoked or expired."""


class Forbidden(APIError):
    """403: a rule forbids it; ``code`` says which (e.g. ``scope_missing``)."""


class BudgetExceeded(Forbidden):
    """403 ``budget_exceeded``: the team spent its month's eval budget, so no new run starts (CI
    runs included) until next month or until a team owner overrides the budget for the month."""


class NotFound(APIError):
    """404: no such prompt (or not visible to this token), or nothing deployed (``not_deployed``)."""


class PromptDisabled(APIError):
    """423: the prompt is kill-switched in this environment. ``get_prompt`` never answers a
    kill-switched prompt from a cache: this is raised, and every cached copy is dropped."""


class ServerError(APIError):
    """5xx: the server failed; nothing was refused, so the CLI treats it like a connection error,
    and ``get_prompt`` like an unreachable server (it serves the cached copy)."""

    exit_code = 2


BY_STATUS = {400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 423: PromptDisabled}
BY_CODE = {"budget_exceeded": BudgetExceeded}  # refusals callers may want to tell apart from the rest
