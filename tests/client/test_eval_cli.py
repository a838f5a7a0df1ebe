"""``promptledger eval`` against a live server, in a subprocess, with runs executing for real (Celery
eager, so the run the API starts executes when its transaction commits): what it prints, the JUnit
XML it writes, and the exit codes CI relies on (0 gate passed, 1 gate failed, 2 anything else)."""

import xml.etree.ElementTree as ET

import pytest

from core.actors import Actor
from evals import gates, queueing
from evals import services as eval_services
from promptledger import client as pl
from registry import selectors
from registry.models import PromptVersion
from registry.services import issue_token
from tests.client.test_cli import cli

PASSING = [
    {"vars": {"name": "Ada"}, "description": "greets Ada", "assertions": [{"type": "contains", "value": "Ada"}]},
    {"vars": {"name": "Grace"}, "assertions": [{"type": "contains", "value": "Grace"}]},
]
# The offline model echoes the rendered message, so this output carries an ESC (forbidden in XML 1.0).
FAILING = {
    "vars": {"name": "Li\x1bnus"},
    "description": "never says it",
    "assertions": [{"type": "contains", "value": "nobody says this"}],
}

VERSION_YAML = """\
messages:
  - role: system
    content: "Write kindly to {{ name }}."
variables:
  name: {type: string, required: true}
model:
  provider: offline
  name: offline-echo-1
  params: {temperature: 0}
message: kinder wording
"""


@pytest.fixture(autouse=True)
def _fresh_payload_cache():
    selectors.payload_cache.clear()
    yield
    selectors.payload_cache.clear()


@pytest.fixture
def eager():
    """Runs execute inline in the live server's thread when the request's transaction commits."""
    from config.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def server(transactional_db, live_server, cast, prompt, version, eager):
    """A live server, ``loan-letter`` v1, the suite ``letters-core`` with two passing cases, and an
    author's token that may push versions and run evals."""
    author = Actor(user=cast["author"])
    suite = eval_services.create_suite(actor=author, slug="letters-core", name="Letters", team=cast["team"])
    eval_services.add_cases(actor=author, suite=suite, cases=PASSING)
    _, token = issue_token(
        actor=Actor.for_system(), user=cast["author"], scopes=["prompts:read", "prompts:write", "evals:run"]
    )
    return {"url": live_server.url, "token": token, "suite": suite, "version": version, "author": author}


def junit_suite(path):
    return ET.parse(path).getroot().find("testsuite")  # noqa: S314 - the file the CLI just wrote


def gate_on(cast, prompt, min_pass_rate):
    gates.set_gate(
        actor=Actor(user=cast["owner"]),
        prompt=prompt,
        suites=[{"suite": "letters-core", "min_pass_rate": min_pass_rate}],
    )


def eval_cli(server, *args):
    return cli(
        "eval",
        "loan-letter",
        "--suite",
        "letters-core",
        "--poll",
        "0.1",
        *args,
        url=server["url"],
        token=server["token"],
    )


def test_a_passing_gate_exits_0_prints_the_table_and_writes_clean_junit(server, cast, prompt, tmp_path):
    gate_on(cast, prompt, 1.0)
    junit = tmp_path / "reports" / "eval.xml"
    done = eval_cli(server, "--version", "1", "--junit", str(junit))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(line.split()[:2] == ["1", "pass"] for line in lines), done.stdout
    assert any(line.split()[:2] == ["2", "pass"] for line in lines), done.stdout
    assert "pass rate: 100.0% (2/2 passed, 0 with errors)" in done.stdout
    assert "cost: $" in done.stdout
    assert "gate for production: PASSED" in done.stdout
    assert "letters-core" in done.stdout and "meets the gate" in done.stdout
    assert "completed 2/2" in done.stderr  # progress, as plain lines: stderr is not a terminal here

    suite = junit_suite(junit)
    assert suite.get("name") == "letters-core"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "0", "0")
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["prompt"] == "loan-letter"
    assert properties["version"] == "1"
    assert properties["content_hash"] == server["version"].content_hash
    assert properties["pass_rate"] == "1.0"
    assert properties["run"].isdigit()
    names = [(case.get("classname"), case.get("name")) for case in suite.iter("testcase")]
    assert names == [("loan-letter", "case 1: greets Ada"), ("loan-letter", "case 2")]


def test_a_failing_gate_exits_1_and_junit_names_the_failure(server, cast, prompt, tmp_path):
    eval_services.add_cases(actor=server["author"], suite=server["suite"], cases=[FAILING])
    gate_on(cast, prompt, 1.0)
    junit = tmp_path / "eval.xml"
    done = eval_cli(server, "--version", "1", "--junit", str(junit), "--environment", "staging")
    assert done.returncode == 1, done.stdout + done.stderr
    failing_row = next(line for line in done.stdout.splitlines() if line.startswith("3 "))
    assert "FAIL" in failing_row and "contains:" in failing_row
    assert "gate for staging: FAILED" in done.stdout
    assert "below_threshold" in done.stdout
    assert "66.7% vs 100.0% required" in done.stdout

    suite = junit_suite(junit)  # parses: the ESC in the output was stripped
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "0")
    case = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in case] == ["case 3: never says it"]
    failure = case[0].find("failure")
    assert failure.get("type") == "contains"
    assert failure.get("message").startswith("contains:")
    assert "output:\nWrite to Linus." in failure.text


def test_file_pushes_a_version_and_the_same_file_again_is_unchanged(server, cast, prompt, tmp_path):
    gate_on(cast, prompt, 1.0)
    path = tmp_path / "loan-letter.yaml"
    path.write_text(VERSION_YAML)
    first = eval_cli(server, "--file", str(path))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "loan-letter: created v2" in first.stdout
    made = PromptVersion.objects.get(prompt=prompt, number=2)
    assert made.messages == [{"role": "system", "content": "Write kindly to {{ name }}."}]
    assert made.change_note == "kinder wording"
    assert "on loan-letter v2" in first.stdout

    again = eval_cli(server, "--file", str(path))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "loan-letter: unchanged: v2" in again.stdout
    assert PromptVersion.objects.filter(prompt=prompt).count() == 2


def test_a_file_the_server_refuses_exits_2_naming_the_field(server, tmp_path):
    path = tmp_path / "bad-template.yaml"
    path.write_text(VERSION_YAML.replace("{{ name }}", "{{ nickname }}"))
    done = eval_cli(server, "--file", str(path))
    assert done.returncode == 2
    assert "HTTP 400" in done.stderr
    assert "nickname" in done.stderr


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "no such file"),
        ("messages: [unclosed\n", "not valid YAML"),
        ("- just\n- a list\n", "expected a mapping"),
        (VERSION_YAML + "mesage: typo\n", "unknown key(s) mesage"),
    ],
)
def test_a_bad_version_file_exits_2_with_its_path(server, tmp_path, content, says):
    path = tmp_path / "prompt.yaml"
    if content is not None:
        path.write_text(content)
    done = eval_cli(server, "--file", str(path))
    assert done.returncode == 2
    assert str(path) in done.stderr
    assert says in done.stderr
    assert done.stdout == ""


def test_an_unknown_suite_exits_2_with_the_servers_code(server):
    done = cli(
        "eval", "loan-letter", "--suite", "no-such-suite", "--version", "1", url=server["url"], token=server["token"]
    )
    assert done.returncode == 2
    assert "suite_not_found" in done.stderr
    assert "HTTP 404" in done.stderr


def test_a_run_that_does_not_finish_in_time_exits_2(server, monkeypatch):
    monkeypatch.setattr(queueing, "enqueue", lambda *args, **kwargs: None)  # no worker picks it up
    done = eval_cli(server, "--version", "1", "--timeout", "0.5")
    assert done.returncode == 2
    assert "still queued (0/2 cases) after 0.5 s" in done.stderr


def test_the_client_follows_next_through_every_page(server, cast, prompt):
    eval_services.add_cases(actor=server["author"], suite=server["suite"], cases=[FAILING])
    client = pl.Client(url=server["url"], token=server["token"])
    cases = list(client.paginate("suites/letters-core/cases/", query={"page_size": 1}))
    assert [c["position"] for c in cases] == [1, 2, 3]
