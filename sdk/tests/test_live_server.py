"""The SDK against a live server loaded with ``manage.py bootstrap_demo``, from wherever the SDK is
installed (CI: a virtualenv holding the SDK wheel and pytest, no Django): the console script
resolves, pulls, diffs, pushes, runs an eval and lists deploy requests; the client fetches prompts
on both sides of a canary, renders exactly as the server's render endpoint does, and computes the
server's content hash.

``PROMPTLEDGER_SDK_TEST_URL`` and ``PROMPTLEDGER_SDK_TEST_TOKEN`` (an admin's token with
``prompts:read``, ``prompts:write`` and ``evals:run``) name the server; without them these tests
skip. ``sdk/ci_check.sh`` starts such a server and sets both.
"""

import json
import os
import uuid
import xml.etree.ElementTree as ET

import pytest
import yaml

from promptledger import client as pl
from promptledger.canary import canary_bucket
from promptledger.prompt_files import content_hash, load_directory

URL = os.environ.get("PROMPTLEDGER_SDK_TEST_URL", "")
TOKEN = os.environ.get("PROMPTLEDGER_SDK_TEST_TOKEN", "")

if not (URL and TOKEN):
    if os.environ.get("REQUIRE_SERVICES") == "1":  # CI: a missing server is a failure, not a skip
        pytest.fail("REQUIRE_SERVICES=1 and these tests need a live server: set PROMPTLEDGER_SDK_TEST_URL "
                    "and PROMPTLEDGER_SDK_TEST_TOKEN (sdk/ci_check.sh does)", pytrace=False)
    pytest.skip("needs a live server with the demo data: set PROMPTLEDGER_SDK_TEST_URL and "
                "PROMPTLEDGER_SDK_TEST_TOKEN (sdk/ci_check.sh does)", allow_module_level=True)

# From the demo data (demo/data: world.yaml and the prompt files).
CANARY_SLUG, CANARY_PERCENT = "support-reply", 10  # production: v3, with v4 on a 10% canary
KILLED_SLUG = "patient-inbox-summary"  # kill-switched in production
PUSHED_SLUG = "plain-language-rewrite"  # Tier 3, so a new version needs no approval
EVAL_SLUG, EVAL_VERSION = "claim-triage", 3  # its suite is claim-triage-core


@pytest.fixture
def client(tmp_path):
    made = pl.Client(url=URL, token=TOKEN, cache_dir=tmp_path / "cache", timeout=10)
    yield made
    made.close()


def test_resolve_prints_the_deployed_version_and_the_sdk_computes_its_content_hash(cli):
    done = cli("resolve", CANARY_SLUG, "-e", "production", url=URL, token=TOKEN)
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert (body["slug"], body["version"], body["canary"]) == (CANARY_SLUG, 3, False)
    assert body["content_hash"] == content_hash(
        {"messages": body["messages"], "variables": body["variables"], "model": body["model"]}
    )


def test_resolve_exits_1_with_the_servers_code_and_reason_when_kill_switched(cli):
    done = cli("resolve", KILLED_SLUG, "-e", "production", url=URL, token=TOKEN)
    assert done.returncode == 1
    assert "prompt_disabled" in done.stderr and "INC-3420" in done.stderr


def test_resolve_exits_1_with_a_wrong_token(cli):
    done = cli("resolve", CANARY_SLUG, "-e", "production", url=URL, token="pl_not-a-token")
    assert done.returncode == 1
    assert "invalid_token" in done.stderr


def test_units_get_the_canary_side_the_sdk_computes(client):
    for n in range(60):
        unit = f"customer-{n}"
        expected = canary_bucket(CANARY_SLUG, "production", unit) < CANARY_PERCENT
        got = client.get_prompt(CANARY_SLUG, "production", unit=unit)
        assert (got.canary, got.number) == (expected, 4 if expected else 3), unit
    with pytest.raises(pl.PromptDisabled):
        client.get_prompt(KILLED_SLUG, "production")


def test_the_client_renders_and_refuses_as_the_servers_render_endpoint(client):
    prompt = client.get_prompt(CANARY_SLUG, "production")
    sample = {"customer_name": "Alan", "question": "How do I raise my contactless limit?",
              "articles": [{"title": "Card limits", "url": "https://help.example.test/limits"}]}
    for values in (sample, {}, {**sample, "customer_name": 7}, {**sample, "undeclared": "x"}):
        path = f"prompts/{CANARY_SLUG}/versions/{prompt.number}/render"
        try:
            _, answer = client.post_json(path, {"variables": values}, accept=(200,))
        except pl.BadRequest as refusal:
            with pytest.raises(pl.RenderError) as refused:
                prompt.render(**values)
            assert (refused.value.code, refused.value.field_errors) == (refusal.code, refusal.field_errors)
        else:
            assert prompt.render(**values) == answer["messages"]


def test_pull_diff_and_push_keep_files_and_server_in_step(cli, tmp_path):
    folder = tmp_path / "prompts"
    pulled = cli("pull", "-e", "production", folder, url=URL, token=TOKEN)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    files = {file.slug: file for file in load_directory(folder)}
    assert {CANARY_SLUG, PUSHED_SLUG, KILLED_SLUG} <= set(files)  # its deployed version, said so
    assert f"{KILLED_SLUG}: kill-switched in production" in pulled.stdout + pulled.stderr

    same = cli("diff", folder, url=URL, token=TOKEN)
    assert same.returncode == 0, same.stdout + same.stderr

    path = files[PUSHED_SLUG].path
    data = yaml.safe_load(open(path, encoding="utf-8"))
    data["messages"][0]["content"] += f"\nCI check {uuid.uuid4().hex}."
    data["message"] = "sdk/ci_check.sh: pushed from the SDK alone"
    with open(path, "w", encoding="utf-8") as stream:
        yaml.safe_dump(data, stream, allow_unicode=True, sort_keys=False)
    changed = cli("diff", folder, url=URL, token=TOKEN)
    assert changed.returncode == 1 and "CI check" in changed.stdout

    pushed = cli("push", folder, url=URL, token=TOKEN)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert f"{PUSHED_SLUG}: created v" in pushed.stdout
    again = cli("push", folder, url=URL, token=TOKEN)
    assert again.returncode == 0 and "Nothing to push." in again.stdout


def test_eval_runs_a_suite_waits_for_it_and_writes_junit(cli, tmp_path):
    junit = tmp_path / "eval.xml"
    done = cli("eval", EVAL_SLUG, "--suite", f"{EVAL_SLUG}-core", "--version", EVAL_VERSION, "--junit", junit,
               "--poll", "0.2", "--timeout", "60", url=URL, token=TOKEN)
    assert done.returncode == 0, done.stdout + done.stderr  # the offline model answers the same every time
    assert "pass rate: 100.0% (3/3 passed, 0 with errors)" in done.stdout
    assert "gate for production: PASSED" in done.stdout
    assert "completed 3/3" in done.stderr  # the server's worker ran it
    suite = ET.parse(junit).getroot().find("testsuite")  # noqa: S314 - the file the CLI just wrote
    assert (suite.get("name"), suite.get("tests"), suite.get("failures")) == (f"{EVAL_SLUG}-core", "3", "0")
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert (properties["prompt"], properties["version"]) == (EVAL_SLUG, str(EVAL_VERSION))


def test_requests_lists_the_deploy_requests(cli):
    done = cli("requests", "--prompt", "loan-decision-letter", url=URL, token=TOKEN)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("#")
