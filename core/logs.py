"""Log lines that say which request or task wrote them: JSON (one object a line) in production,
plain text in the embedded mode (``PROMPTLEDGER_LOG_FORMAT``), both formatted here.

The context is a contextvar: ``bind(request_id=...)`` for the span of a request
(``config.middleware.RequestIdMiddleware``) or a task (``config.celery``: its id, the run it is
about, and the request id carried from the request that queued it), ``restore(token)`` after. The
formatters add the context to every record written meanwhile, so a line logged deep inside a
service carries the request id without being passed it. (A record is formatted in the thread that
wrote it, by a ``StreamHandler``; a thread a request or task starts has a context of its own.)

A JSON line holds ``time`` (ISO-8601, UTC), ``level``, ``logger``, ``message``, the context, the
record's ``extra`` fields, and ``exception`` with the traceback when there is one. Nothing here
reads a request or its headers: what goes into a line is what the code logs, and the code never
logs a credential.
"""

import contextvars
import json
import logging
import time

_CONTEXT = contextvars.ContextVar("promptledger_log_context", default=None)
# The context's fields, in the order a line shows them; other bound fields follow.
_CONTEXT_ORDER = ("request_id", "task_id", "task", "run_id")
# Attributes every LogRecord has; anything else on a record came from `extra=` (or the context).
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
# Django's django.request and django.server records carry the request object itself: its text is
# the raw path with the query string, which may hold anything, and the access line says it better.
_DROPPED = frozenset({"request"})
_ENCODE = json.JSONEncoder(default=str, ensure_ascii=False, separators=(",", ":")).encode


def bind(**fields):
    """Add ``fields`` (``None`` values left out) to the context of the current request or task;
    returns the token that ``restore`` takes to put the context back as it was."""
    current = _CONTEXT.get() or {}
    return _CONTEXT.set({**current, **{key: value for key, value in fields.items() if value is not None}})


def restore(token):
    _CONTEXT.reset(token)


def context():
    """The fields bound now (a copy; empty outside any request or task)."""
    return dict(_CONTEXT.get() or {})


def request_id():
    """The id of the request being served, or carried by the task being run; ``""`` outside both."""
    return (_CONTEXT.get() or {}).get("request_id", "")


def _context_fields():
    bound = _CONTEXT.get() or {}
    ordered = {key: bound[key] for key in _CONTEXT_ORDER if key in bound}
    ordered.update(bound)
    return ordered


def _extra_fields(record):
    return {
        key: value for key, value in record.__dict__.items()
        if key not in _STANDARD and key not in _DROPPED and not key.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    """One JSON object a line (newlines inside a message or a traceback are escaped by JSON)."""

    def format(self, record):
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in (*_context_fields().items(), *_extra_fields(record).items()):
            line.setdefault(key, value)  # `extra` never overwrites the four fields above
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return _ENCODE(line)


class PlainFormatter(logging.Formatter):
    """``time LEVEL logger [request id, task, run] message``: for a person reading a terminal. The
    ``extra`` fields are left out; the messages of the access and task lines say them in words."""

    def __init__(self, fmt=None, datefmt=None, style="%", **kwargs):
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s", datefmt, style, **kwargs)

    def formatMessage(self, record):
        bound = _context_fields()
        where = " ".join(
            str(value) if key == "request_id" else f"{key.removesuffix('_id')}={value}"
            for key, value in bound.items() if key != "task"
        )
        head = f"{record.asctime} {record.levelname} {record.name}"
        return f"{head} [{where}] {record.message}" if where else f"{head} {record.message}"
