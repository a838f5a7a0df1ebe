"""``manage.py check`` on the production essentials (config.checks): each fails with its id on a
broken setup and passes on a good one, and a dead broker is reported in seconds, not hung on."""

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.checks import run_checks

from config import checks
from config.celery import app as celery_app

ROOT = Path(__file__).resolve().parent.parent
NOBODY = 65534
ESSENTIAL_IDS = {"promptledger.E010", "promptledger.E011", "promptledger.E012", "promptledger.E013"}


def ids(messages):
    return {message.id for message in messages}


def as_unprivileged(check):
    """``check()``'s message ids, found by a process that file permissions apply to: as root (which
    reads and writes through any mode bits) a forked child that became ``nobody`` runs it."""
    if os.geteuid() != 0:
        return sorted(ids(check()))
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop root, run the check, hand the ids back, leave without cleanup
        code = 0
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(write_end, json.dumps(sorted(ids(check()))).encode())
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the test
            os.write(write_end, json.dumps({"crashed": repr(exc)}).encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = json.loads(pipe.read() or b'{"crashed": "no answer"}')
    os.waitpid(pid, 0)
    assert not isinstance(answer, dict), answer
    return answer


@pytest.fixture
def open_dir():
    """A folder every user may enter (pytest's tmp_path is root's alone), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="promptledger-checks-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.django_db
def test_a_good_setup_passes_every_essential_under_check_deploy(settings, open_dir):
    settings.PROMPTLEDGER_AUDIT_SINK = str(open_dir / "checkpoints.jsonl")
    messages = run_checks(include_deployment_checks=True)
    assert ids(messages) & ESSENTIAL_IDS == set(), [str(m) for m in messages if m.id in ESSENTIAL_IDS]
    assert (open_dir / "checkpoints.jsonl").read_text() == ""  # opened for appending, nothing written


def test_the_essentials_cost_nothing_outside_production_without_deploy(settings, monkeypatch):
    monkeypatch.setattr(checks, "ESSENTIALS", (lambda: pytest.fail("an essential ran"),))
    settings.PRODUCTION = False
    assert ids(run_checks()) & ESSENTIAL_IDS == set()
    settings.PRODUCTION = True
    with pytest.raises(pytest.fail.Exception, match="an essential ran"):
        checks.production_essentials(None)


def test_an_unreadable_signing_key_file_is_E010_and_a_readable_one_passes(settings, open_dir):
    key = open_dir / "audit-signing.key"
    key.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    settings.PROMPTLEDGER_AUDIT_SIGNING_KEY = ""
    settings.PROMPTLEDGER_AUDIT_SIGNING_KEY_FILE = str(key)
    key.chmod(0o644)
    assert as_unprivileged(checks.signing_key_readable) == []
    key.chmod(0o000)
    assert as_unprivileged(checks.signing_key_readable) == ["promptledger.E010"]
    key.chmod(0o644)
    open_dir.chmod(0o700)  # the key's folder closed to the app's user: still E010, never a crash
    assert as_unprivileged(checks.signing_key_readable) == ["promptledger.E010"]


def test_a_signing_key_that_is_not_a_key_is_E010_with_a_hint_naming_the_settings(settings):
    settings.PROMPTLEDGER_AUDIT_SIGNING_KEY = base64.b64encode(b"too short").decode()
    [error] = checks.signing_key_readable()
    assert error.id == "promptledger.E010"
    assert "PROMPTLEDGER_AUDIT_SIGNING_KEY" in error.hint and "PROMPTLEDGER_AUDIT_SIGNING_KEY_FILE" in error.hint


def test_a_read_only_sink_directory_is_E011_and_a_writable_one_passes(settings, open_dir):
    sink = open_dir / "audit"
    sink.mkdir()
    settings.PROMPTLEDGER_AUDIT_SINK = str(sink)  # a directory: checkpoints.jsonl is appended there
    sink.chmod(0o777)
    assert as_unprivileged(checks.sink_appendable) == []
    assert (sink / "checkpoints.jsonl").exists()
    (sink / "checkpoints.jsonl").unlink()
    sink.chmod(0o555)
    assert as_unprivileged(checks.sink_appendable) == ["promptledger.E011"]


def test_a_sink_file_that_cannot_be_appended_to_or_none_at_all_is_E011(settings, open_dir):
    settings.PROMPTLEDGER_AUDIT_SINK = str(open_dir / "no-such-folder" / "checkpoints.jsonl")
    [error] = checks.sink_appendable()
    assert error.id == "promptledger.E011" and "PROMPTLEDGER_AUDIT_SINK" in error.hint
    settings.PROMPTLEDGER_AUDIT_SINK = ""
    assert ids(checks.sink_appendable()) == {"promptledger.E011"}


def test_a_dead_broker_is_E013_within_seconds(monkeypatch):
    for url in ("redis://127.0.0.1:1/0", "redis://10.255.255.1:6379/0"):  # refused; black-holed (no answer)
        # Celery reads CELERY_BROKER_URL from the environment before its own configuration.
        monkeypatch.setenv("CELERY_BROKER_URL", url)
        monkeypatch.setattr(celery_app.conf, "broker_url", url)
        target = celery_app.connection_for_write()
        assert (target.hostname, target.port) == (urlsplit(url).hostname, urlsplit(url).port)
        started = time.monotonic()
        [error] = checks.broker_reachable()
        elapsed = time.monotonic() - started
        assert error.id == "promptledger.E013", error
        assert "CELERY_BROKER_URL" in error.hint
        assert elapsed < 10, f"{url}: {elapsed:.1f} s"


def test_the_broker_url_in_a_message_hides_its_password():
    assert checks._without_password("redis://:s3cret@redis:6379/0") == "redis://:***@redis:6379/0"
    assert checks._without_password("redis://user:s3cret@redis:6379/0") == "redis://user:***@redis:6379/0"
    assert checks._without_password("redis://redis:6379/0") == "redis://redis:6379/0"


def test_manage_py_check_on_a_dead_database_and_broker_fails_with_both_ids_in_seconds(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://promptledger:secret@127.0.0.1:1/promptledger",
        "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
        "PROMPTLEDGER_AUDIT_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode(),
        "PROMPTLEDGER_AUDIT_SINK": str(tmp_path / "checkpoints.jsonl"),
        "PROMPTLEDGER_VAR_DIR": str(tmp_path / "var"),
    }
    env.pop("DJANGO_ENV", None)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "promptledger.E012" in output and "promptledger.E013" in output, output
    assert "promptledger.E010" not in output and "promptledger.E011" not in output, output
    assert "secret@" not in output  # the database's password is never printed
    assert elapsed < 30, f"check took {elapsed:.1f} s"  # Django's start-up included; the probes are bounded
