"""Settings explain themselves: a bad value stops the process with one message naming every bad
variable, the value it held and what is allowed; a typo in a switch is an error, never a silent
False; importing the settings creates nothing on disk."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.environment import Environment

ROOT = Path(__file__).resolve().parent.parent


def _manage(tmp_path, *args, **env):
    environ = {k: v for k, v in os.environ.items() if k not in ("DJANGO_ENV", "DEBUG")}
    environ.update({"PROMPTLEDGER_VAR_DIR": str(tmp_path / "var"), "PROMPTLEDGER_METRICS": "false", **env})
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120
    )


def test_every_bad_value_is_named_at_once_with_what_is_allowed(tmp_path):
    done = _manage(
        tmp_path, "check",
        PROMPTLEDGER_EVAL_LEASE_SECONDS="ten", PROMPTLEDGER_METRICS="ture", PROMPTLEDGER_DRIFT_HOUR="24",
        PROMPTLEDGER_TRUSTED_PROXIES="10.0.0.0/8,10.0.0.0/33", DJANGO_ENV="prod",
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    message = done.stderr
    assert "5 environment variable(s) cannot be used" in message
    assert "PROMPTLEDGER_EVAL_LEASE_SECONDS='ten': Not a valid integer. Allowed: a whole number from 1" in message
    assert "PROMPTLEDGER_METRICS='ture': Not a valid boolean. Allowed: true or false" in message
    assert "PROMPTLEDGER_DRIFT_HOUR='24'" in message and "from 0 to 23" in message
    assert "'10.0.0.0/33' is not an address or network" in message
    assert "DJANGO_ENV='prod'" in message and "one of development, production" in message


def test_production_without_a_secret_key_says_what_to_set(tmp_path):
    done = _manage(tmp_path, "check", DJANGO_ENV="production", SECRET_KEY="")
    assert done.returncode == 1
    assert "SECRET_KEY='': must be set when DJANGO_ENV=production" in done.stderr


def test_importing_the_settings_makes_no_folder(tmp_path):
    var = tmp_path / "var"
    done = subprocess.run(
        [sys.executable, "-c", "import config.settings"], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PROMPTLEDGER_VAR_DIR": str(var), "CELERY_BROKER_URL": "filesystem://",
             "STATIC_ROOT": str(tmp_path / "static")},
    )
    assert done.returncode == 0, done.stderr
    assert not var.exists() and not (tmp_path / "static").exists()


def test_a_starting_process_makes_its_folders_owner_only(tmp_path):
    var = tmp_path / "var"
    done = _manage(tmp_path, "check", CELERY_BROKER_URL="filesystem://", DATABASE_URL=f"sqlite:///{var}/db.sqlite3")
    assert done.returncode == 0, done.stderr
    assert oct(var.stat().st_mode & 0o777) == "0o700"
    for folder in ("out", "processed", "control"):
        assert (var / "broker" / folder).is_dir()
    assert (var / "staticfiles").is_dir()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("1", True), ("yes", True), ("on", True), ("false", False), ("0", False), ("off", False)],
)
def test_switches_take_the_usual_spellings(monkeypatch, value, expected):
    monkeypatch.setenv("SOME_SWITCH", value)
    env = Environment()
    assert env.bool("SOME_SWITCH", not expected) is expected
    env.check()


def test_unset_variables_take_their_defaults_and_empty_lists_drop_blanks(monkeypatch):
    monkeypatch.delenv("UNSET_NUMBER", raising=False)
    monkeypatch.setenv("SOME_LIST", " a, ,b ,")
    monkeypatch.setenv("SOME_NETWORKS", "192.168.5.7, 10.1.2.0/16")
    env = Environment()
    assert env.int("UNSET_NUMBER", 7, minimum=1) == 7
    assert env.list("SOME_LIST") == ["a", "b"]
    assert env.networks("SOME_NETWORKS") == ["192.168.5.7/32", "10.1.0.0/16"]
    env.check()


def test_a_value_out_of_range_is_refused_and_the_default_kept_until_the_check(monkeypatch):
    monkeypatch.setenv("SOME_COUNT", "0")
    env = Environment()
    assert env.int("SOME_COUNT", 3, minimum=1) == 3
    with pytest.raises(ImproperlyConfigured, match=r"SOME_COUNT='0': Must be greater than or equal to 1"):
        env.check()
