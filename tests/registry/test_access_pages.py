"""The settings pages in the browser (Django's test client): API tokens (/settings/tokens/), teams
(/teams/) and site roles (/settings/people/). Each form is posted once as someone allowed and once
as someone refused; the refusals show the service's own message."""

import re
from datetime import timedelta

from django.utils import timezone

from core.actors import Actor
from registry.models import APIToken, Membership, SiteRole, Team
from registry.services import tokens
from tests.factories import UserFactory


def html(response):
    return response.content.decode()


# --- API tokens ----------------------------------------------------------------------------------
def test_the_nav_leads_to_the_tokens_page_which_offers_only_the_scopes_the_roles_allow(browser_for):
    page = browser_for("viewer").get("/settings/tokens/")
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    text = html(page)
    assert 'href="/settings/tokens/" aria-current="page">Settings</a>' in text
    assert re.search(r'value="prompts:read" id="id_scopes_0">', text)
    assert re.search(r'value="deploy" id="id_scopes_3" disabled>', text)
    assert 'value="90"' in text and "at most 365 days" in text
    assert "No tokens yet" in text and "People" not in text  # the people tab is for admins


def test_creating_a_token_shows_its_secret_once(browser_for, cast):
    author = browser_for("author")
    made = author.post("/settings/tokens/", {"name": "ci", "scopes": ["prompts:read", "deploy"], "expires_in_days": 30})
    assert made.status_code == 200 and made["Cache-Control"] == "no-store"
    token = APIToken.objects.get(user=cast["author"])
    assert token.scopes == ["deploy", "prompts:read"] and token.name == "ci"
    assert timezone.now() + timedelta(days=29) < token.expires_at <= timezone.now() + timedelta(days=30)
    secret = re.search(r'<code class="hash-full" id="token-secret">(pl_[^<]+)</code>', html(made)).group(1)
    assert tokens.hash_token(secret) == token.key_hash
    assert "shown this once" in html(made)
    again = html(author.get("/settings/tokens/"))
    assert secret not in again and f"{token.prefix}…" in again and "never" in again


def test_a_scope_beyond_the_roles_is_refused_next_to_the_field(browser_for):
    refused = browser_for("viewer").post("/settings/tokens/", {"scopes": ["deploy"], "expires_in_days": 90})
    assert refused.status_code == 400
    assert "not allowed for viewer: deploy" in html(refused)
    assert not APIToken.objects.exists()


def test_an_expiry_beyond_the_maximum_is_refused_next_to_the_field(browser_for, settings):
    settings.PROMPTLEDGER_TOKEN_MAX_DAYS = 60
    refused = browser_for("author").post("/settings/tokens/", {"scopes": ["prompts:read"], "expires_in_days": 61})
    assert refused.status_code == 400
    assert re.search(r'id="id_expires_in_days_errors"><li>after now and at most 60 days ahead', html(refused))
    huge = browser_for("author").post(
        "/settings/tokens/", {"scopes": ["prompts:read"], "expires_in_days": 10**12}
    )
    assert huge.status_code == 400 and "at most 60 days ahead" in html(huge)
    assert not APIToken.objects.exists()


def test_revoking_your_token_in_the_browser(browser_for, cast):
    token, _ = tokens.issue_token(actor=Actor(user=cast["author"]), user=cast["author"], scopes=["prompts:read"])
    author = browser_for("author")
    assert author.get(f"/settings/tokens/{token.pk}/revoke/").status_code == 405
    done = author.post(f"/settings/tokens/{token.pk}/revoke/", follow=True)
    assert done.status_code == 200 and "revoked: it stops working at once" in html(done)
    assert APIToken.objects.get(pk=token.pk).revoked_at is not None
    assert "Revoked" in html(done)


def test_someone_elses_token_is_not_found_in_the_browser_but_admins_see_and_revoke_it(browser_for, cast):
    theirs, _ = tokens.issue_token(actor=Actor(user=cast["viewer"]), user=cast["viewer"], scopes=["prompts:read"])
    assert theirs.prefix not in html(browser_for("author").get("/settings/tokens/"))
    refused = browser_for("author").post(f"/settings/tokens/{theirs.pk}/revoke/")
    assert refused.status_code == 404
    assert APIToken.objects.get(pk=theirs.pk).revoked_at is None

    admin = browser_for("admin")
    listed = html(admin.get("/settings/tokens/", {"user": "viewer"}))
    assert "Everyone's tokens" in listed and "<td>viewer</td>" in listed and theirs.prefix in listed
    assert admin.post(f"/settings/tokens/{theirs.pk}/revoke/").status_code == 302
    assert APIToken.objects.get(pk=theirs.pk).revoked_at is not None


# --- teams ---------------------------------------------------------------------------------------
def test_members_see_their_teams_and_admins_all_with_a_create_form(browser_for):
    mine = html(browser_for("viewer").get("/teams/"))
    assert "/teams/payments/" in mine and "/teams/growth/" not in mine and "New team" not in mine
    everything = html(browser_for("admin").get("/teams/"))
    assert "/teams/payments/" in everything and "/teams/growth/" in everything and "New team" in everything


def test_an_admin_creates_a_team_and_an_owner_is_refused(browser_for):
    made = browser_for("admin").post("/teams/", {"slug": "claims", "name": "Claims"})
    assert made.status_code == 302 and made["Location"] == "/teams/claims/"
    taken = browser_for("admin").post("/teams/", {"slug": "claims", "name": "Again"})
    assert taken.status_code == 400 and "already taken" in html(taken)
    refused = browser_for("owner").post("/teams/", {"slug": "mine", "name": "Mine"})
    assert refused.status_code == 403 and "this needs the site role" in html(refused)
    assert set(Team.objects.values_list("slug", flat=True)) == {"payments", "growth", "claims"}


def test_a_team_page_offers_member_forms_to_owners_only(browser_for):
    owners = html(browser_for("owner").get("/teams/payments/"))
    assert "Add a member" in owners and 'aria-label="Remove viewer"' in owners
    viewers = html(browser_for("viewer").get("/teams/payments/"))
    assert "Add a member" not in viewers and "Remove" not in viewers and "owners and admins add" in viewers
    assert browser_for("outsider").get("/teams/payments/").status_code == 404


def test_an_owner_adds_a_member_and_changes_a_role(browser_for, cast):
    UserFactory(username="newbie")
    owner = browser_for("owner")
    added = owner.post("/teams/payments/members/", {"username": "newbie", "role": "author"}, follow=True)
    assert "newbie is now author of Payments." in html(added)
    changed = owner.post("/teams/payments/members/", {"username": "viewer", "role": "approver"})
    assert changed.status_code == 302
    roles = dict(Membership.objects.filter(team=cast["team"]).values_list("user__username", "role"))
    assert roles["newbie"] == "author" and roles["viewer"] == "approver"


def test_adding_an_unknown_person_shows_the_services_message(browser_for):
    refused = browser_for("owner").post("/teams/payments/members/", {"username": "ghost", "role": "viewer"})
    assert refused.status_code == 400 and "no active user &#x27;ghost&#x27;" in html(refused)


def test_an_author_cannot_add_or_remove_members(browser_for, cast):
    UserFactory(username="newbie")
    added = browser_for("author").post("/teams/payments/members/", {"username": "newbie", "role": "owner"})
    assert added.status_code == 403 and "this needs the &#x27;owner&#x27; role" in html(added)
    removed = browser_for("author").post("/teams/payments/members/remove/", {"username": "viewer"})
    assert removed.status_code == 403
    assert not Membership.objects.filter(user__username="newbie").exists()
    assert Membership.objects.filter(team=cast["team"], user__username="viewer").exists()


def test_an_owner_removes_a_member(browser_for, cast):
    owner = browser_for("owner")
    done = owner.post("/teams/payments/members/remove/", {"username": "viewer"}, follow=True)
    assert "viewer removed from Payments." in html(done)
    assert not Membership.objects.filter(team=cast["team"], user__username="viewer").exists()
    again = owner.post("/teams/payments/members/remove/", {"username": "viewer"}, follow=True)
    assert "&#x27;viewer&#x27; is not a member of &#x27;payments&#x27;" in html(again)


# --- people and site roles -----------------------------------------------------------------------
def test_admins_see_people_and_their_site_roles_others_are_refused(browser_for):
    page = browser_for("admin").get("/settings/people/")
    assert page.status_code == 200
    assert 'aria-label="Revoke compliance from compliance"' in html(page)
    assert browser_for("owner").get("/settings/people/").status_code == 403
    assert "compliance" in html(browser_for("admin").get("/settings/people/", {"q": "compl"}))


def test_an_admin_grants_and_revokes_a_site_role(browser_for, cast):
    admin = browser_for("admin")
    granted = admin.post("/settings/people/grant/", {"username": "viewer", "role": "risk"}, follow=True)
    assert "viewer is now risk." in html(granted)
    assert SiteRole.objects.filter(user=cast["viewer"], role="risk").exists()
    revoked = admin.post("/settings/people/revoke/", {"username": "viewer", "role": "risk"}, follow=True)
    assert "viewer is no longer risk." in html(revoked)
    assert not SiteRole.objects.filter(user=cast["viewer"], role="risk").exists()
    missing = admin.post("/settings/people/revoke/", {"username": "viewer", "role": "risk"}, follow=True)
    assert "does not have the site role" in html(missing)


def test_granting_to_an_unknown_person_or_as_a_non_admin_is_refused(browser_for, cast):
    unknown = browser_for("admin").post("/settings/people/grant/", {"username": "ghost", "role": "admin"})
    assert unknown.status_code == 400 and "no active user &#x27;ghost&#x27;" in html(unknown)
    refused = browser_for("owner").post("/settings/people/grant/", {"username": "owner", "role": "admin"})
    assert refused.status_code == 403
    refused = browser_for("owner").post("/settings/people/revoke/", {"username": "admin", "role": "admin"})
    assert refused.status_code == 403
    assert not SiteRole.objects.filter(user=cast["owner"]).exists()
    assert SiteRole.objects.filter(user=cast["admin"], role="admin").exists()
