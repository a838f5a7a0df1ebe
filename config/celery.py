"""The Celery app: configured from Django settings (``CELERY_*``), tasks found in each app.

Logs (``core.logs``): workers and beat log as the web does (``settings.LOGGING``), not in Celery's
own format. Every message published carries the id of the request (or task) that queued it, in
the ``promptledger_request_id`` header, whichever call site queued it (``before_task_publish``).
A worker binds that id, the task's id and the ids in its arguments (``run_id``, ``delivery_id``)
to the log context while the task runs, and writes one line when it ends (logger
``promptledger.task``). A task with no such header (beat's) gets an id of its own, which the tasks
it queues carry in turn.
"""

import gc
import inspect
import logging
import logging.config
import os
import threading
import time
import uuid

from celery import Celery, signals

from core import logs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("promptledger")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

REQUEST_ID_HEADER = "promptledger_request_id"
task_log = logging.getLogger("promptledger.task")
_running = {}  # (task id, thread) -> (the log context's token, when it started)


@signals.setup_logging.connect
def _log_as_the_web_does(loglevel=None, **kwargs):
    """Celery leaves the logging alone when this signal has a receiver; the command line's
    ``--loglevel`` still decides the level of this process."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
    if loglevel:
        logging.getLogger().setLevel(loglevel)


@signals.worker_process_init.connect
def _freeze_the_imported_heap(**kwargs):
    """In each worker child, once Django, Celery and the SDKs are imported: move every object made
    so far out of the garbage collector's generations (``gc.freeze``). They live as long as the
    process, and a full collection would otherwise walk all of them again and again while a run
    allocates (the SDKs make many short-lived objects a case). And the first generation is
    collected every 50,000 allocations rather than 700, as in the web workers (config/wsgi.py): a
    3,000-case run at a 20 ms provider made about 290 young collections, 45 us a case, where the
    no-database ceiling made 10."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


@signals.before_task_publish.connect
def _carry_request_id(headers=None, **kwargs):
    request_id = logs.request_id()
    if request_id and headers is not None:
        headers.setdefault(REQUEST_ID_HEADER, request_id)


def _ids(task, args, kwargs):
    """The arguments whose names end in ``_id`` (``run_id``, ``delivery_id``): what the task is about."""
    try:
        bound = inspect.signature(task.run).bind_partial(*(args or ()), **(kwargs or {}))
    except (TypeError, ValueError):
        return {}
    return {name: value for name, value in bound.arguments.items()
            if name.endswith("_id") and isinstance(value, int | str)}


def _carried(task):
    request = task.request
    carried = getattr(request, REQUEST_ID_HEADER, None) or (getattr(request, "headers", None) or {}).get(
        REQUEST_ID_HEADER
    )
    if not carried and request.is_eager:
        carried = logs.request_id()  # run at once in the thread that queued it (tests' eager mode)
    return str(carried)[:64] if carried else uuid.uuid4().hex


@signals.task_prerun.connect
def _task_started(task_id=None, task=None, args=None, kwargs=None, **extra):
    context = logs.bind(request_id=_carried(task), task_id=task_id, task=task.name, **_ids(task, args, kwargs))
    _running[(task_id, threading.get_ident())] = (context, time.perf_counter())


@signals.task_postrun.connect
def _task_finished(task_id=None, task=None, state=None, **extra):
    context, started = _running.pop((task_id, threading.get_ident()), (None, None))
    if context is None:
        return
    try:
        status = (state or "unknown").lower()
        milliseconds = round((time.perf_counter() - started) * 1000, 1)
        task_log.log(
            logging.ERROR if status == "failure" else logging.INFO,
            "%s %s in %.1f ms", task.name, status, milliseconds,
            extra={"status": status, "duration_ms": milliseconds},
        )
    finally:
        logs.restore(context)
