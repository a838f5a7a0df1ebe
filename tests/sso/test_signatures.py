"""Electronic signatures of SSO accounts: a Tier-0 approval asks the IdP to authenticate again
(prompt=login, max_age=0); the approval records the IdP's auth_time and amr; an authentication
older than the policy allows is refused on every channel (browser, API on the session, API token)."""

from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from approvals import services
from approvals.models import Approval
from approvals.services import Signature
from approvals.services.signatures import IDP_SESSION_KEY
from audit.models import AuditEvent
from core import session_auth
from core.actors import Actor
from registry.services import issue_token
from tests.approvals.steps import refused
from tests.browser.conftest import PASSWORD as LOCAL_PASSWORD
from tests.oidc.idp import PASSWORD

pytestmark = pytest.mark.usefixtures("flow")


@pytest.fixture
def sso_approvers(idp, settings, flow):
    """'approver' and 'approver2' sign in at the IdP (their local accounts linked by username)."""
    settings.PROMPTLEDGER_OIDC_LINK_BY_USERNAME = True
    settings.PROMPTLEDGER_REAUTH_MAX_AGE = 60
    groups = ["pl-payments-approvers"]
    people = {name: {"password": PASSWORD, "groups": groups} for name in ("approver", "approver2")}
    idp.set_users({**idp.users, **people})


@pytest.fixture
def dr(flow, production):
    return services.open_request(
        actor=Actor(user=flow["owner"], authenticated_at=timezone.now()), prompt=flow["v2"].prompt,
        version=flow["v2"], environment=production, rationale="friendlier letter",
    )


def _age(client, minutes):
    """As if the IdP had authenticated this session's person ``minutes`` ago."""
    session = client.session
    then = timezone.now() - timedelta(minutes=minutes)
    session_auth.stamp(session, then)
    session[IDP_SESSION_KEY] = {**session[IDP_SESSION_KEY], "auth_time": then.isoformat()}
    session.save()


def test_a_tier_0_approval_forces_a_fresh_idp_login_and_records_auth_time_and_amr(sso_approvers, person, dr):
    approver = person("approver")
    approver.sign_in()
    _age(approver.client, minutes=10)
    page = approver.client.get(f"/approvals/requests/{dr.pk}/").content.decode()
    assert 'id="idp-reauth-link"' in page and 'name="password"' not in page
    stale = approver.client.post(f"/approvals/requests/{dr.pk}/approve", {"comment": "ok"})
    assert stale.status_code == 403 and "reauth_required" in stale.content.decode()

    link = approver.client.get(f"/approvals/requests/{dr.pk}/").context["idp_reauth_url"]
    authorize = approver.start(link)
    asked = parse_qs(urlparse(authorize).query)
    assert asked["prompt"] == ["login"] and asked["max_age"] == ["0"]
    started = timezone.now().replace(microsecond=0)
    callback = approver.through_idp(authorize)  # the IdP shows its login page again, session or not
    back = approver.back(callback)
    assert back.status_code == 302 and back["Location"] == f"/approvals/requests/{dr.pk}/"

    assert approver.client.post(f"/approvals/requests/{dr.pk}/approve", {"comment": "ok"}).status_code == 302
    approval = Approval.objects.get(request=dr, user__username="approver")
    assert approval.auth_method == "idp" and approval.amr == ["pwd"]
    assert started - timedelta(seconds=1) <= approval.authenticated_at <= timezone.now()
    event = AuditEvent.objects.get(action="deploy_request.approved")
    assert event.data["auth_method"] == "idp" and event.data["amr"] == ["pwd"]


def test_signing_again_as_someone_else_signs_the_session_out(sso_approvers, person, dr):
    approver = person("approver")
    approver.sign_in()
    authorize = approver.start(f"/sso/login/?reauth=1&next=/approvals/requests/{dr.pk}/")
    approver.login = "approver2"  # another person signs in at the IdP in this browser
    approver.at_idp.cookies.clear()
    approver.back(approver.through_idp(authorize))
    assert "_auth_user_id" not in approver.client.session
    assert not Approval.objects.exists()


def test_a_stale_idp_authentication_is_refused_on_every_channel(sso_approvers, person, dr, flow):
    approver = person("approver")
    approver.sign_in()
    _age(approver.client, minutes=10)
    # The browser; the account's old local password does not stand in for the IdP either.
    assert approver.client.post(f"/approvals/requests/{dr.pk}/approve", {}).status_code == 403
    typed = approver.client.post(f"/approvals/requests/{dr.pk}/approve", {"password": LOCAL_PASSWORD})
    assert typed.status_code == 403 and "reauth_required" in typed.content.decode()
    # The API on the same session.
    api = approver.client.post(f"/api/v1/deploy-requests/{dr.pk}/approve", {}, content_type="application/json")
    assert api.status_code == 403 and api.json()["code"] == "reauth_required"
    # An API token of the same person, however fresh: a token cannot vouch for who holds it.
    _, raw = issue_token(actor=Actor.for_system(), user=flow["approver"], scopes=["deploy", "prompts:read"])
    token_client = APIClient()
    token_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    by_token = token_client.post(f"/api/v1/deploy-requests/{dr.pk}/approve", {}, format="json")
    assert by_token.status_code == 403 and by_token.json()["code"] == "reauth_required"
    # The service itself, whatever calls it.
    old = Signature("idp", timezone.now() - timedelta(minutes=10), ("pwd",))
    refused("reauth_required", services.approve, actor=Actor(user=flow["approver"]), request=dr, signature=old)
    assert not Approval.objects.exists()
    # A rejection is not an approval: a stale signature may still say no.
    assert services.reject(actor=Actor(user=flow["approver"]), request=dr, comment="no", signature=old)


def test_a_local_accounts_token_signs_as_before(sso_approvers, dr, flow):
    # approver3 never signed in at the IdP: the policy's rule for tokens is unchanged for them.
    from approvals import administration

    administration.set_named_approvers(
        actor=Actor(user=flow["owner"], authenticated_at=timezone.now()), prompt=flow["v2"].prompt,
        approvers=["approver", "approver2", "approver3"], approver_groups=None,
    )
    token = Signature("api_token", timezone.now())
    made = services.approve(actor=Actor(user=flow["approver3"]), request=dr, signature=token)
    assert made.auth_method == "api_token"
