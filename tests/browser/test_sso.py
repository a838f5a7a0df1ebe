"""Single sign-on in Chromium through the real provider's pages (tests/oidc/provider.mjs): the
first sign-in makes the account with the role its IdP group maps to; the group taken away at the
IdP takes the role away at the next sign-in, and the audit trail says the IdP did it. A Tier-0
approval with a stale IdP sign-in sends the approver back to the IdP's login page first."""

import json
from datetime import timedelta
from importlib import import_module

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import expect

from approvals import services
from approvals.models import Approval
from approvals.services.signatures import IDP_SESSION_KEY
from audit.models import AuditEvent
from core import session_auth
from core.actors import Actor
from registry.models import Membership
from sso import provider
from tests.approvals.conftest import flow, production  # noqa: F401 - the Tier-0 world
from tests.oidc.idp import CLIENT_ID, CLIENT_SECRET, PASSWORD, TestProvider

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
GROUP_MAP = {"pl-payments-approvers": {"team": "payments", "role": "approver"}}


@pytest.fixture(scope="module")
def idp_server(live_server, tmp_path_factory):
    users = {name: {"password": PASSWORD, "email": f"{name}@example.org", "groups": ["pl-payments-approvers"]}
             for name in ("dana", "approver")}
    server = TestProvider(tmp_path_factory.mktemp("idp-browser"), [live_server.url + "/sso/callback/"], users)
    yield server
    server.stop()


@pytest.fixture
def idp(idp_server, settings):
    settings.PROMPTLEDGER_OIDC_ISSUER = idp_server.issuer
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_RP_SCOPES = "openid email profile groups"
    settings.PROMPTLEDGER_OIDC_GROUP_MAP = json.dumps(GROUP_MAP)
    settings.PROMPTLEDGER_OIDC_DISPLAY_NAME = "Test IdP"
    settings.PROMPTLEDGER_SSO_ONLY = True
    settings.PROMPTLEDGER_BREAK_GLASS_ACCOUNTS = ["admin"]
    provider.forget()
    yield idp_server
    provider.forget()


def _sign_in_at_the_idp(page, *, consent, login=True, who="dana"):
    page.goto("/accounts/login/")
    expect(page.get_by_label("Password")).to_have_count(0)  # SSO-only: no password form
    page.get_by_role("link", name="Sign in with Test IdP").click()
    if login:  # else the IdP's own session still stands: it sends the browser straight back
        expect(page.get_by_role("heading", name="Test IdP sign-in")).to_be_visible()
        page.get_by_label("IdP username").fill(who)
        page.get_by_label("IdP password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in at the IdP").click()
    if consent:
        expect(page.get_by_role("heading", name="Allow access")).to_be_visible()
        page.get_by_role("button", name="Allow").click()
    expect(page.get_by_role("heading", name="Prompts", level=1)).to_be_visible()


def test_sign_in_through_the_idp_makes_the_account_and_the_group_decides_the_role(cast, idp, page):
    _sign_in_at_the_idp(page, consent=True)
    dana = get_user_model().objects.get(username="dana")
    assert Membership.objects.get(user=dana, team=cast["team"]).role == "approver"
    added = AuditEvent.objects.get(action="membership.added", data__username="dana")
    assert added.actor_type == "system" and added.request_id == "oidc"

    # The group is taken away at the IdP; dana signs out and in again.
    idp.update_user("dana", groups=[])
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("link", name="Sign in with Test IdP")).to_be_visible()
    _sign_in_at_the_idp(page, consent=False, login=False)
    assert not Membership.objects.filter(user=dana, team=cast["team"]).exists()
    removed = AuditEvent.objects.get(action="membership.removed", data__username="dana")
    assert removed.actor_type == "system" and removed.request_id == "oidc"
    synced = AuditEvent.objects.filter(action="sso.roles_synced").order_by("sequence").last()
    assert synced.data["source"] == "oidc" and synced.data["changes"] == [
        {"team": "payments", "before": "approver", "after": None}
    ]


def _age_sign_in(page, minutes):
    """As if the IdP had authenticated this browser's person ``minutes`` ago (its session, edited
    on the server)."""
    key = next(c["value"] for c in page.context.cookies() if c["name"] == django_settings.SESSION_COOKIE_NAME)
    session = import_module(django_settings.SESSION_ENGINE).SessionStore(session_key=key)
    then = timezone.now() - timedelta(minutes=minutes)
    session_auth.stamp(session, then)
    session[IDP_SESSION_KEY] = {**session[IDP_SESSION_KEY], "auth_time": then.isoformat()}
    session.save()


def test_a_tier_0_approval_sends_the_approver_to_sign_in_at_the_idp_again(
    idp, settings, page, flow, production  # noqa: F811 - the fixtures imported above
):
    settings.PROMPTLEDGER_OIDC_LINK_BY_USERNAME = True  # the cast's local 'approver' signs in at the IdP
    settings.PROMPTLEDGER_REAUTH_MAX_AGE = 300
    request = services.open_request(
        actor=Actor(user=flow["owner"], authenticated_at=timezone.now()), prompt=flow["v2"].prompt,
        version=flow["v2"], environment=production, rationale="friendlier letter",
    )
    _sign_in_at_the_idp(page, consent=True, who="approver")
    _age_sign_in(page, minutes=30)
    page.goto(f"/approvals/requests/{request.pk}/")
    expect(page.get_by_label("Your password")).to_have_count(0)
    page.get_by_role("link", name="Sign in again to sign").click()
    # prompt=login: the IdP asks again although its own session still stands.
    expect(page.get_by_role("heading", name="Test IdP sign-in")).to_be_visible()
    page.get_by_label("IdP username").fill("approver")
    page.get_by_label("IdP password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in at the IdP").click()
    expect(page.get_by_role("link", name="Sign in again to sign")).to_have_count(0)
    page.get_by_label("Comment").fill("Reviewed")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text("Approved.")).to_be_visible()
    approval = Approval.objects.get(request=request)
    assert approval.auth_method == "idp" and approval.amr == ["pwd"]
    assert timezone.now() - approval.authenticated_at < timedelta(minutes=1)
