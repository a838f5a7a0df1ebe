"""Signing in at the IdP: the account is made on first sign-in with the roles its groups map to,
through the registry's audited services (actor system, request id oidc); a group taken away at
the IdP takes the role away at the next sign-in, audited the same way."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from audit.models import AuditEvent
from core import session_auth
from registry.models import Membership, SiteRole
from sso.models import Identity


def _events(action, username):
    return list(AuditEvent.objects.filter(action=action, data__username=username).order_by("sequence"))


def test_first_sign_in_creates_the_account_with_the_mapped_team_role(cast, person):
    response = person("ava").sign_in()
    assert response["Location"] == "/"
    ava = get_user_model().objects.get(username="ava")
    assert ava.email == "ava@example.org" and not ava.has_usable_password()
    assert Membership.objects.get(user=ava, team=cast["team"]).role == "approver"
    identity = Identity.objects.get(user=ava)
    assert identity.subject == "ava" and identity.groups == ["pl-payments-approvers"]
    created, added = _events("user.created", "ava"), _events("membership.added", "ava")
    assert len(created) == 1 and len(added) == 1
    for event in created + added:
        assert (event.actor_type, event.actor_username, event.request_id) == ("system", "system", "oidc")
    synced = _events("sso.roles_synced", "ava")
    assert synced[0].data["source"] == "oidc" and synced[0].data["groups"] == ["pl-payments-approvers"]
    assert _events("sso.identity_linked", "ava")[0].data["created_account"] is True
    # The browser is signed in as ava.
    assert person("ava").client.get("/").status_code == 302  # another browser is not
    assert response.wsgi_request.user.username == "ava"


def test_losing_the_group_removes_the_role_at_the_next_sign_in_audited(cast, person, idp):
    person("cara").sign_in()
    cara = get_user_model().objects.get(username="cara")
    assert Membership.objects.get(user=cara, team=cast["team"]).role == "author"
    assert SiteRole.objects.filter(user=cara, role="compliance").exists()
    idp.update_user("cara", groups=["pl-payments-approvers"])  # auditors gone, authors → approvers
    person("cara").sign_in()
    assert Membership.objects.get(user=cara, team=cast["team"]).role == "approver"
    assert not SiteRole.objects.filter(user=cara, role="compliance").exists()
    revoked = [e for e in AuditEvent.objects.filter(action="site_role.revoked") if e.data["username"] == "cara"]
    assert len(revoked) == 1 and revoked[0].request_id == "oidc" and revoked[0].actor_type == "system"
    changed = _events("membership.changed", "cara")
    assert changed[0].data["role"] == {"before": "author", "after": "approver"}
    idp.update_user("cara", groups=[])
    person("cara").sign_in()
    assert not Membership.objects.filter(user=cara, team=cast["team"]).exists()
    removed = _events("membership.removed", "cara")
    assert len(removed) == 1 and removed[0].request_id == "oidc"
    assert _events("sso.roles_synced", "cara")[-1].data["changes"] == [
        {"team": "payments", "before": "approver", "after": None}
    ]


def test_teams_the_map_does_not_name_are_left_to_the_admins(cast, person):
    person("ben").sign_in()
    ben = get_user_model().objects.get(username="ben")
    Membership.objects.create(user=ben, team=cast["other_team"], role="viewer")
    person("ben").sign_in()
    assert Membership.objects.get(user=ben, team=cast["other_team"]).role == "viewer"


def test_the_session_counts_as_authenticated_when_the_idp_authenticated(cast, person):
    ava = person("ava")
    ava.sign_in()
    session = ava.client.session
    at = session_auth.authenticated_at(session)
    identity = Identity.objects.get(user__username="ava")
    assert at == identity.last_auth_time and timezone.now() - at < timedelta(minutes=1)
    assert session["promptledger.idp_authentication"]["amr"] == ["pwd"]


def test_a_local_accounts_username_is_not_taken_over_by_an_idp_subject(cast, person):
    get_user_model().objects.create_user(username="ava", password="local-password-1")  # noqa: S106
    ava = person("ava")
    response = ava.back(ava.through_idp(ava.start()))
    assert response.status_code == 302 and "sso=failed" in response["Location"]
    assert not Identity.objects.exists()
    refused = AuditEvent.objects.get(action="sso.sign_in_refused")
    assert refused.data["reason"] == "username_taken" and refused.data["source"] == "oidc"


def test_a_deactivated_account_cannot_sign_in_at_the_idp(cast, person):
    person("ava").sign_in()
    get_user_model().objects.filter(username="ava").update(is_active=False)
    again = person("ava")
    response = again.back(again.through_idp(again.start()))
    assert "sso=failed" in response["Location"]
    assert again.client.get("/").status_code == 302 and "/accounts/login/" in again.client.get("/")["Location"]


def test_sso_is_off_until_configured(db, client):
    assert client.get("/sso/login/").status_code == 404
    assert client.get("/sso/callback/?code=x&state=y").status_code == 404
