"""``GET /api/v1/deploy-requests/{id}/evidence``: a ZIP for the prompt's team, compliance and admins
(with the ``audit:read`` scope), 404 for who cannot see the request, 409 for a request that put
nothing live. (Every member of the cast is in tests/test_access_matrix.py.)"""

import io
import zipfile

import pytest

from approvals import services as approvals
from tests.approvals.conftest import act, flow, production  # noqa: F401 - the Tier-0 world
from tests.risk.evidence_world import deployed  # noqa: F401 - the deployed request

pytestmark = pytest.mark.django_db


def url(request):
    return f"/api/v1/deploy-requests/{request.pk}/evidence"


@pytest.mark.parametrize("who", ["compliance", "viewer", "admin"])
def test_compliance_the_team_and_admins_download_the_pack(api_for, deployed, who):  # noqa: F811
    response = api_for(who).get(url(deployed), HTTP_ACCEPT="application/zip")
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="evidence-request-{deployed.pk}.zip"'
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert {"manifest.json", "seal.jsonl", "report.html"} <= set(archive.namelist())


def test_who_cannot_see_the_request_gets_404_and_a_missing_one_too(api_for, deployed):  # noqa: F811
    assert api_for("outsider").get(url(deployed)).status_code == 404
    missing = api_for("compliance").get(f"/api/v1/deploy-requests/{deployed.pk + 1000}/evidence")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_a_token_needs_the_audit_read_scope(api_for, deployed):  # noqa: F811
    without = api_for("compliance", scopes=["prompts:read", "deploy"]).get(url(deployed))
    assert without.status_code == 403 and without.json()["code"] == "scope_missing"
    assert api_for("compliance", scopes=["audit:read"]).get(url(deployed)).status_code == 200


def test_risk_reads_the_prompt_but_is_not_given_its_pack(api_for, flow, deployed):  # noqa: F811
    from registry.models import SiteRole
    from tests.factories import UserFactory

    flow["risk"] = UserFactory(username="risk")
    SiteRole.objects.create(user=flow["risk"], role=SiteRole.RISK)
    response = api_for("risk").get(url(deployed))
    assert response.status_code == 403 and response.json()["code"] == "not_team_member"


def test_a_request_not_deployed_has_no_pack(api_for, flow, production):  # noqa: F811
    request = approvals.open_request(
        actor=act(flow["owner"]), prompt=flow["v2"].prompt, version=flow["v2"], environment=production,
        rationale="not yet",
    )
    response = api_for("compliance").get(url(request))
    assert response.status_code == 409 and response.json()["code"] == "not_deployed"
