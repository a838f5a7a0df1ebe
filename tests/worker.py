"""A real Celery worker process for tests: on the Redis broker, against the test database.

``start_worker(tmp_path, env=...)`` returns a handle with ``.kill()`` (SIGKILL, as a crash) and
``.stop()``; each test session uses its own queue so stale messages from elsewhere never reach it.
Needs PostgreSQL (the worker is another process, so it reads committed rows of the test database)
and a Redis broker in ``CELERY_BROKER_URL``; skips saying which is missing, or fails under
``REQUIRE_SERVICES=1``.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from config.celery import app as celery_app
from tests.conftest import need_service

REPO = Path(settings.BASE_DIR)
QUEUE = f"promptledger-test-{uuid.uuid4().hex[:8]}"


def require_worker_services():
    need_service(
        "PostgreSQL",
        connection.vendor == "postgresql",
        "set DATABASE_URL=postgres://postgres@127.0.0.1:5432/promptledger",
    )
    need_service(
        "a Redis broker",
        settings.CELERY_BROKER_URL.startswith("redis://"),
        "set CELERY_BROKER_URL=redis://127.0.0.1:6379/15",
    )


def _database_url():
    db = connection.settings_dict
    user = quote(db.get("USER") or "")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


class Worker:
    def __init__(self, proc, log_path):
        self.proc, self.log_path = proc, log_path

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "ready." in self.log():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"the worker exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"the worker did not become ready in {timeout} s:\n{self.log()[-3000:]}")

    def kill(self):
        """SIGKILL: no shutdown, no acknowledgement — as a crashed machine."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def start_worker(tmp_path, *, env=None, concurrency=4, name="w"):
    """Start a worker (threads pool) and wait until it is ready."""
    require_worker_services()
    celery_app.conf.task_default_queue = QUEUE
    log_path = Path(tmp_path) / f"worker-{name}-{uuid.uuid4().hex[:6]}.log"
    full_env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_DEFAULT_QUEUE": QUEUE,
        "PROMPTLEDGER_VAR_DIR": str(Path(tmp_path) / "worker-var"),
        "PROMPTLEDGER_AUDIT_SIGNING_KEY": settings.PROMPTLEDGER_AUDIT_SIGNING_KEY,
        "PROMPTLEDGER_AUDIT_SINK": settings.PROMPTLEDGER_AUDIT_SINK,
        "PROMPTLEDGER_WEBHOOK_ALLOWED_NETWORKS": ",".join(settings.PROMPTLEDGER_WEBHOOK_ALLOWED_NETWORKS),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        **(env or {}),
    }
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "-Q",
        QUEUE,
        "--pool",
        "threads",
        "--concurrency",
        str(concurrency),
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-n",
        f"{name}-{uuid.uuid4().hex[:6]}@%h",
    ]
    handle = log_path.open("w")
    proc = subprocess.Popen(argv, cwd=REPO, env=full_env, stdout=handle, stderr=subprocess.STDOUT)  # noqa: S603
    worker = Worker(proc, log_path)
    worker.wait_ready()
    return worker


def wait_for(condition, *, timeout=60, interval=0.1, message="condition"):
    """Poll ``condition`` until it is truthy or the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {message}")
