"""The ``promptledger`` console script with no server behind it: the exit codes scripts rely on
(2 for a usage error, no server configured or no answer), its version, and that neither the CLI
nor the client imports Django or the server's code."""

import os
import subprocess
import sys
from pathlib import Path

import promptledger


def test_the_console_script_is_installed_beside_the_interpreter():
    script = Path(sys.executable).with_name("promptledger")
    assert script.is_file() and os.access(script, os.X_OK), script


def test_version_flag_prints_the_version(cli):
    done = cli("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"promptledger {promptledger.__version__}"


def test_exits_2_when_no_url_is_configured(cli):
    done = cli("resolve", "loan-letter", "-e", "production", token="pl_x")
    assert done.returncode == 2
    assert "PROMPTLEDGER_URL" in done.stderr


def test_exits_2_when_the_server_does_not_answer(cli, closed_url):
    done = cli("resolve", "loan-letter", "-e", "production", url=closed_url, token="pl_x")
    assert done.returncode == 2
    assert "cannot reach" in done.stderr


def test_exits_2_on_a_usage_error(cli):
    done = cli("resolve", "loan-letter", url="http://127.0.0.1:9")
    assert done.returncode == 2
    assert "--environment" in done.stderr


def test_kill_switch_needs_a_reason_and_a_server_that_answers(cli, closed_url):
    done = cli("kill-switch", "loan-letter", "--environment", "production", url=closed_url, token="pl_x")
    assert done.returncode == 2 and "--reason" in done.stderr
    done = cli("kill-switch", "loan-letter", "-e", "production", "-m", "leaks", "--off", url=closed_url, token="pl_x")
    assert done.returncode == 2 and "cannot reach" in done.stderr


def test_eval_without_a_url_exits_2(cli):
    done = cli("eval", "loan-letter", "--suite", "letters-core", "--version", "1", token="pl_x")
    assert done.returncode == 2
    assert "PROMPTLEDGER_URL" in done.stderr


def test_eval_needs_either_a_version_or_a_file(cli):
    neither = cli("eval", "loan-letter", "--suite", "letters-core", url="http://127.0.0.1:9")
    both = cli("eval", "loan-letter", "--suite", "s", "--version", "1", "--file", "p.yaml", url="http://127.0.0.1:9")
    assert neither.returncode == both.returncode == 2
    assert "--version" in neither.stderr and "not allowed with" in both.stderr


def test_push_names_a_bad_file_with_its_line_before_asking_the_server(cli, tmp_path, closed_url):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "letter.yaml").write_text(
        "slug: letter\nname: Letter\nteam: payments\ntier: 3\nowner: ann\ndata_categories: []\n"
        "model: {provider: offline, name: offline-echo-1}\n"
        "messages:\n  - role: system\n    content: \"Write to {{ nickname }}.\"\n",
        encoding="utf-8",
    )
    done = cli("push", prompts, url=closed_url, token="pl_x")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "letter.yaml:10:" in done.stderr and "'nickname' is not a declared variable" in done.stderr
    assert "cannot reach" not in done.stderr  # refused before any request


def test_neither_the_client_nor_the_cli_imports_django_or_the_server(tmp_path):
    modules = "promptledger.client, promptledger.cli, promptledger.prompts_as_code, promptledger.webhooks"
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [
            sys.executable,
            "-c",
            f"import sys, {modules}; "
            "assert not [m for m in sys.modules if m.split('.')[0] in "
            "('django', 'rest_framework', 'celery', 'registry', 'config', 'evals', 'audit')], sorted(sys.modules)",
        ],
        env={k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
