"""What every benchmark here shares: a fresh PostgreSQL database, the app's environment with
production settings, gunicorn, and stopping every process a run started, Ctrl-C included.

Standard library (and psycopg, already a dependency of the app) only, so a benchmark runs from a
plain checkout with the project's virtualenv.
"""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


class CouldNotRun(Exception):
    """The benchmark could not produce figures (a server did not start, wrk failed, ...)."""


# --- the database ---------------------------------------------------------------------------------


def database_name(url):
    return urlsplit(url).path.lstrip("/")


def admin_url(url):
    """The same server's ``postgres`` database, to create and drop others from."""
    return urlunsplit(urlsplit(url)._replace(path="/postgres"))


def reset_database(url):
    """Drop and create the database named in ``url`` (connecting to ``postgres`` to do so)."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name or parts.scheme not in ("postgres", "postgresql"):
        raise CouldNotRun(f"--database-url must name a PostgreSQL database, got {url!r}")
    try:
        with psycopg.connect(admin_url(url), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        raise CouldNotRun(f"cannot reset database {name!r}: {exc}") from exc


def server_env(database_url, var_dir, **extra):
    """The environment of the app's processes: production settings, plain HTTP on localhost."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PROMPTLEDGER_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_ENV="production",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",
        DATABASE_URL=database_url,
        PROMPTLEDGER_VAR_DIR=str(var_dir),
        LOG_LEVEL="ERROR",  # the contract check's 4xx answers are expected; 5xx are still logged
        PYTHONDONTWRITEBYTECODE="1",
        **extra,
    )
    return env


def setup_django_here(env):
    """Run Django in this process with the servers' environment (to migrate and seed)."""
    import django

    os.environ.update(env)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    django.setup()


# --- servers --------------------------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_gunicorn():
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or shutil.which("gunicorn")
    if gunicorn is None:
        raise CouldNotRun("gunicorn is not installed in this environment")
    return gunicorn


def gunicorn_args(port, *, workers, threads):
    """The gthread worker: it keeps HTTP/1.1 connections alive, and its main thread keeps telling
    the arbiter it is alive while another thread streams a long response."""
    return [
        "--bind", f"127.0.0.1:{port}",
        "--worker-class", "gthread",
        "--workers", str(workers),
        "--threads", str(threads),
        "--keep-alive", "10",
        "--log-level", "warning",
    ]


class Processes:
    """Every process this run started, stopped (process group first, then kill) on the way out."""

    def __init__(self):
        self.running = []

    def start(self, argv, **kwargs):
        proc = subprocess.Popen(argv, start_new_session=True, **kwargs)
        self.running.append(proc)
        return proc

    def stop_all(self):
        for proc in self.running:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        for proc in self.running:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        self.running.clear()


def fetch(url, headers=None, timeout=5):
    """``(status, headers, body)`` for a GET; HTTP errors are answers, not exceptions."""
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - a localhost URL
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - a localhost URL
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def wait_until_up(proc, url, headers, name, timeout=40):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CouldNotRun(f"{name} exited with status {proc.returncode} while starting")
        try:
            status, _, _ = fetch(url, headers, timeout=2)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise CouldNotRun(f"{name} did not answer 200 at {url} within {timeout}s")


# --- a run ----------------------------------------------------------------------------------------


@contextmanager
def scratch_run(prefix="promptledger-bench-"):
    """``(procs, scratch)``: every process started through ``procs`` is stopped on the way out, and
    a failure to run carries the last lines of the app's log (``scratch / "app.log"``)."""
    procs = Processes()
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        try:
            yield procs, Path(scratch)
        except CouldNotRun as exc:
            log = Path(scratch) / "app.log"
            if log.exists() and log.stat().st_size:
                tail = log.read_text(errors="replace").splitlines()[-30:]
                raise CouldNotRun(f"{exc}\n--- the app's log, last lines ---\n" + "\n".join(tail)) from exc
            raise
        finally:
            procs.stop_all()


def _interrupted(signum, frame):
    raise KeyboardInterrupt


def run_main(main):
    """Exit with ``main()``'s status: 0 PASS, 1 FAIL; 2 when it could not run or was interrupted."""
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        sys.exit(main())
    except CouldNotRun as exc:
        print(f"could not run: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted; every process this run started was stopped", file=sys.stderr)
        sys.exit(2)


def wait_for_log_line(proc, log_path, marker, name, timeout=60):
    """Wait until ``marker`` appears in the log a process writes (a Celery worker's ``ready.``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log_path.exists() and marker in log_path.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise CouldNotRun(f"{name} exited with status {proc.returncode} while starting")
        time.sleep(0.1)
    raise CouldNotRun(f"{name} did not log {marker!r} within {timeout}s")


def run_json_client(procs, argv, env=None, timeout=900, cwd=None):
    """Run a measuring client (``python <argv>``) in its own process; its last stdout line is its
    JSON result, and a result with an ``error`` key is a failure to run."""
    import json

    proc = procs.start([sys.executable, *argv], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    try:
        output, errors = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise CouldNotRun(f"the client {argv} took longer than {timeout}s") from exc
    if proc.returncode != 0 or not output.strip():
        raise CouldNotRun(f"the client {argv} exited with status {proc.returncode}:\n{errors[-3000:]}")
    result = json.loads(output.strip().splitlines()[-1])
    if "error" in result:
        raise CouldNotRun(result["error"])
    return result
