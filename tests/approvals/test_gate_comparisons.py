"""The request page's eval evidence of change (``templates/evals/_gate_comparisons.html``): for each
gate suite, the candidate's run against the live version's run, linked to the full comparison, with
the changed outputs inline; after the deploy it compares with the version that was live before."""

import html
import re

import pytest
from django.test import Client

from approvals import services
from evals.models import EvalRun

from .conftest import act


def page_of(user, dr):
    client = Client()
    client.force_login(user)
    response = client.get(f"/approvals/requests/{dr.pk}/")
    assert response.status_code == 200
    return html.unescape(response.content.decode())


@pytest.fixture
def dr(flow, production):
    return services.open_request(
        actor=act(flow["owner"]), prompt=flow["v2"].prompt, version=flow["v2"], environment=production,
        rationale="friendlier letter",
    )


def runs_of(flow):
    candidate = EvalRun.objects.get(version=flow["v2"], suite__slug="core")
    live = EvalRun.objects.get(version=flow["v1"], suite__slug="core")
    return candidate, live


def test_the_request_page_links_each_gate_suites_comparison_and_shows_changed_outputs(flow, dr):
    body = page_of(flow["approver"], dr)
    candidate, live = runs_of(flow)
    section = re.search(r'<section class="panel gate-comparisons".*?</section>', body, re.S).group(0)
    assert f'href="/evals/runs/{candidate.pk}/compare/?against={live.pk}"' in section
    assert f"run {candidate.pk} against run {live.pk} (v1)" in section
    assert re.search(r"<strong>2</strong> of 2 outputs changed", section)
    plain = re.sub(r"</?(del|ins)>", "", section)
    assert "Write to Ada." in plain and "Dear Ada, here is your letter." in plain
    assert "<ins>Dear</ins>" in section and "<del>Write to</del>" in section
    assert section.count('<li class="compare-case ') == 2


def test_after_the_deploy_it_compares_with_the_version_live_before(flow, dr, production):
    from registry.services import set_deployment

    set_deployment(actor=act(flow["owner"]), prompt=dr.prompt, environment=production, version=flow["v2"])
    dr.refresh_from_db()
    assert dr.base_version == flow["v1"]
    candidate, live = runs_of(flow)
    assert f"/evals/runs/{candidate.pk}/compare/?against={live.pk}" in page_of(flow["viewer"], dr)


def test_a_gate_suite_without_a_run_of_the_live_version_says_which_run_is_missing(flow, dr):
    EvalRun.objects.filter(version=flow["v1"]).update(status=EvalRun.FAILED)
    body = page_of(flow["approver"], dr)
    assert "No comparison: v1 (live) has no finished run of core." in body
