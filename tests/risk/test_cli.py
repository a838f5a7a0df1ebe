"""The CLI meets the overdue-review refusal too: it speaks the same deploy API (live server)."""

import pytest

from core.actors import Actor
from registry.services import issue_token
from tests.client.test_cli import cli

from .conftest import open_request


@pytest.mark.django_db(transaction=True)
def test_the_cli_deploy_of_a_tier_0_prompt_on_an_overdue_model_is_refused(live_server, register, overdue):
    overdue(5)
    request = open_request(register, "loan-letter")
    _, token = issue_token(actor=Actor.for_system(), user=register["owner"], scopes=["prompts:read", "deploy"])
    refused = cli("deploy", str(request.pk), url=live_server.url, token=token)
    assert refused.returncode == 1 and "model_review_overdue" in refused.stderr
    tier_2 = open_request(register, "faq-answer")
    deployed = cli("deploy", str(tier_2.pk), url=live_server.url, token=token)
    assert deployed.returncode == 0 and "deployed" in deployed.stdout, deployed.stderr
