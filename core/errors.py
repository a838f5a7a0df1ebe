"""The one family of domain errors that services raise. Each has a stable ``code`` and an HTTP
status; the API and the browser each map them to a response in one place."""


class DomainError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, detail, *, code=None, field_errors=None, status=None):
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        if status:
            self.status = status
        self.field_errors = field_errors or {}


class ValidationFailed(DomainError):
    status = 400
    code = "invalid"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class PermissionDenied(DomainError):
    status = 403
    code = "forbidden"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class PromptDisabled(DomainError):
    status = 423
    code = "prompt_disabled"


class Busy(DomainError):
    """A transient failure (a deadlock PostgreSQL broke) that persisted through the service's
    retries; nothing was written, and the same call may simply be made again."""

    status = 503
    code = "busy"
