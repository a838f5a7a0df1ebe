"""The SDK's offline verifier (``promptledger verify``) needs the standard library alone: it runs
under ``python -S`` with nothing but the folder holding the package on the path (sdk/ in a checkout,
site-packages where the wheel is installed), answers a broken file with exit 1 naming the
problem, an unreadable one with exit 2, and warns when no key was pinned."""

import json
import os
import subprocess
import sys
from pathlib import Path

import promptledger

# Where the package under test lives: sdk/ in a checkout; site-packages in the wheel's own virtualenv
# (sdk/ci_check.sh runs these tests from a copy, outside the checkout).
SDK = Path(promptledger.__file__).resolve().parents[1]


def verify(*args, cwd):
    env = {"PYTHONPATH": str(SDK), "PATH": os.environ.get("PATH", "")}
    return subprocess.run(
        [sys.executable, "-S", "-m", "promptledger", "verify", *map(str, args)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
    )


def test_the_verifier_imports_nothing_outside_the_standard_library(tmp_path):
    code = (
        "import sys; import promptledger.verification.command, promptledger.verification.pack; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('yaml', 'jinja2', 'django', 'cryptography')))"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(SDK)},
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_file_without_its_manifest_fails_and_no_pinned_key_is_warned_about(tmp_path):
    event = {"record": "event", "sequence": 1, "prev_hash": "0" * 64, "hash": "f" * 64}
    path = tmp_path / "cut.jsonl"
    path.write_text(json.dumps(event) + "\n")
    done = verify(path, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout.startswith("BROKEN at ")
    assert "WARNING: no --public-key was given" in done.stderr


def test_a_missing_file_is_exit_2(tmp_path):
    done = verify(tmp_path / "nowhere.zip", cwd=tmp_path)
    assert done.returncode == 2 and "cannot read" in done.stderr
