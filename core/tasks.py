"""Queue a Celery task by its name, so the code that queues it need not import the module that
defines it (no import cycle between a service and its tasks). The broker carries only the name and
the arguments; workers find the task by name, as they always do."""

from celery import current_app


def send_task(name, *, args=(), countdown=None, task_id=None):
    """Queue task ``name`` (with ``task_id`` when given). Under ``task_always_eager`` (tests) it runs
    here at once, as ``apply_async`` would, from the task registered under that name."""
    if current_app.conf.task_always_eager:
        current_app.loader.import_default_modules()  # registers every app's tasks, as a worker does
        return current_app.tasks[name].apply(args=args, task_id=task_id)
    return current_app.send_task(
        name, args=args, queue=current_app.conf.task_default_queue, countdown=countdown, task_id=task_id
    )
