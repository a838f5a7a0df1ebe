"""The approval flow from the CLI against a live server: the same rules, the same codes, exit 1 on
a refusal."""

import pytest

from core.actors import Actor
from registry.services import issue_token
from tests.approvals.conftest import flow, production  # noqa: F401 - shared fixtures

from .test_cli import cli

SCOPES = ["prompts:read", "deploy"]


@pytest.fixture
def tokens(transactional_db, live_server, flow):  # noqa: F811
    made = {}
    for name in ("owner", "author", "approver", "approver2"):
        _, made[name] = issue_token(actor=Actor.for_system(), user=flow[name], scopes=SCOPES)
    return live_server.url, made


def test_request_approve_and_deploy_from_the_cli_with_the_servers_refusals(tokens):
    url, token = tokens
    opened = cli("request", "loan-letter", "-v", "2", "-e", "production", "-m", "friendlier", url=url,
                 token=token["owner"])
    assert opened.returncode == 0, opened.stderr
    assert "pending" in opened.stdout and "[insufficient_approvals]" in opened.stdout
    request_id = opened.stdout.split()[0].lstrip("#")
    refused = cli("approve", request_id, url=url, token=token["author"])
    assert refused.returncode == 1
    assert "author_cannot_approve" in refused.stderr
    inbox = cli("requests", "--waiting-for-me", url=url, token=token["approver"])
    assert f"#{request_id}\tpending" in inbox.stdout
    early = cli("deploy", request_id, url=url, token=token["owner"])
    assert early.returncode == 1 and "insufficient_approvals" in early.stderr
    for name in ("approver", "approver2"):
        assert cli("approve", request_id, "-m", "ok", url=url, token=token[name]).returncode == 0
    deployed = cli("deploy", request_id, url=url, token=token["owner"])
    assert deployed.returncode == 0, deployed.stderr
    assert "deployed" in deployed.stdout
    again = cli("deploy", request_id, url=url, token=token["owner"])
    assert again.returncode == 1 and "stale_request" in again.stderr
