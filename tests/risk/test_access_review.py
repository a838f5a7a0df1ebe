"""The access review: for a fixed cast, every account's site roles, team roles, live token scopes, last
sign-in and token use, and who may approve which tier in which team (from the same rule a decision
is checked against); its CSV with formulas neutralised; the sign-off, re-authenticated like a
Tier-0 approval, refused when the report changed, immutable and audited; and who may see and sign."""

import csv
import datetime
import io

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from approvals.administration import set_named_approvers
from approvals.policy import eligible_approver_ids, policy_for
from approvals.services.signatures import Signature
from audit.models import AuditEvent
from core.actors import Actor
from core.errors import Conflict, PermissionDenied
from registry.models import APIToken, ImmutableRowError
from registry.services import issue_token, revoke_token
from risk import access_review, services
from risk.models import AccessReviewSignOff
from tests.factories import PromptFactory

pytestmark = pytest.mark.django_db

USED = datetime.datetime(2026, 11, 3, 14, 30, tzinfo=datetime.UTC)
SIGNED_IN = datetime.datetime(2026, 11, 20, 8, 0, tzinfo=datetime.UTC)


def now_signed(user):
    return Actor(user=user, authenticated_at=timezone.now())


@pytest.fixture
def world(cast):
    system = Actor.for_system("access-review-tests")
    loan = PromptFactory(slug="loan-letter", team=cast["team"], owner=cast["owner"], tier=0)
    PromptFactory(slug="card-letter", team=cast["team"], owner=cast["owner"], tier=0)  # nobody named
    PromptFactory(slug="faq-answer", team=cast["team"], owner=cast["owner"], tier=1)
    set_named_approvers(actor=now_signed(cast["owner"]), prompt=loan, approvers=["approver", "owner"])
    token, _ = issue_token(actor=system, user=cast["author"], scopes=["prompts:read", "prompts:write"], name="ci")
    APIToken.objects.filter(pk=token.pk).update(last_used_at=USED)
    old, _ = issue_token(actor=system, user=cast["viewer"], scopes=["prompts:read"], name="laptop")
    APIToken.objects.filter(pk=old.pk).update(last_used_at=USED)
    revoke_token(actor=system, token=old)
    type(cast["owner"]).objects.filter(pk=cast["owner"].pk).update(last_login=SIGNED_IN)
    return {**cast, "loan": loan}


def people(report):
    return {person["username"]: person for person in report["users"]}


def test_the_report_lists_each_accounts_roles_tokens_and_last_use(world):
    report = access_review.build(actor=Actor(user=world["compliance"]))
    by_name = people(report)
    assert set(by_name) == {"owner", "approver", "author", "viewer", "outsider", "admin", "compliance", "model-owner"}
    assert by_name["compliance"]["site_roles"] == ["compliance"] and by_name["admin"]["site_roles"] == ["admin"]
    assert by_name["author"]["team_roles"] == [{"team": "payments", "role": "author"}]
    assert by_name["outsider"]["team_roles"] == [{"team": "growth", "role": "owner"}]
    assert by_name["author"]["token_scopes"] == ["prompts:read", "prompts:write"]
    assert [t["name"] for t in by_name["author"]["tokens"]] == ["ci"]
    assert by_name["author"]["last_token_use"] == "2026-11-03"
    # A revoked token grants nothing, but its last use still counts.
    assert by_name["viewer"]["token_scopes"] == [] and by_name["viewer"]["tokens"] == []
    assert by_name["viewer"]["last_token_use"] == "2026-11-03"
    assert by_name["owner"]["last_sign_in"] == "2026-11-20" and by_name["approver"]["last_sign_in"] is None


def test_who_may_approve_tier_0_in_payments_is_the_named_approvers_of_each_prompt(world):
    report = access_review.build(actor=Actor(user=world["compliance"]))
    cells = {(c["team"], c["tier"]): c for c in report["approvers"]}
    assert cells[("payments", 0)]["prompts"] == {"card-letter": [], "loan-letter": ["approver", "owner"]}
    assert cells[("payments", 1)]["any_prompt"] == ["approver", "owner"]
    assert cells[("growth", 1)]["any_prompt"] == ["outsider"]
    assert ("payments", 2) not in cells and ("payments", 3) not in cells  # those tiers need no approval
    by_name = people(report)
    assert by_name["approver"]["can_approve"] == [
        {"team": "payments", "tier": 0, "prompts": ["loan-letter"]},
        {"team": "payments", "tier": 1, "prompts": None},
    ]
    assert by_name["author"]["can_approve"] == [] and by_name["admin"]["can_approve"] == []
    # The same people the approval rule itself answers for that prompt.
    named = eligible_approver_ids(world["loan"], policy_for(0))
    assert sorted(type(world["owner"]).objects.filter(pk__in=named).values_list("username", flat=True)) == [
        "approver", "owner"]


def test_un_naming_an_approver_takes_tier_0_away_from_them_in_the_report(world):
    set_named_approvers(actor=now_signed(world["owner"]), prompt=world["loan"], approvers=["owner"])
    by_name = people(access_review.build(actor=Actor(user=world["compliance"])))
    assert by_name["approver"]["can_approve"] == [{"team": "payments", "tier": 1, "prompts": None}]


def test_the_csv_has_one_row_per_account_and_no_cell_a_spreadsheet_would_run(world):
    world["viewer"].first_name = '=HYPERLINK("http://evil.example","x")'
    world["viewer"].save()
    report = access_review.build(actor=Actor(user=world["admin"]))
    rows = list(csv.DictReader(io.StringIO(access_review.as_csv(report))))
    by_name = {row["username"]: row for row in rows}
    assert len(rows) == 8
    assert by_name["viewer"]["name"].startswith("'=HYPERLINK")
    assert by_name["approver"]["can_approve"] == "payments tier 0: loan-letter; payments tier 1: every prompt"
    assert by_name["author"]["token_scopes"] == "prompts:read prompts:write"
    assert by_name["approver"]["last_sign_in"] == "never"


def _sign(world, *, signature=None, fingerprint=None, who="compliance", period=None):
    actor = Actor(user=world[who])
    if fingerprint is None:
        fingerprint = access_review.fingerprint(access_review.build(actor=Actor(user=world["compliance"])))
    return services.sign_off_access_review(
        actor=actor, period=period or access_review.current_period(), comment="Removed nobody; all justified.",
        fingerprint=fingerprint, signature=signature or Signature("password", timezone.now()),
    )


def test_a_compliance_sign_off_records_the_report_it_saw_and_is_audited(world):
    signed = _sign(world)
    assert signed.reviewer_name == "compliance" and signed.auth_method == "password" and signed.user_count == 8
    assert access_review.fingerprint(signed.report) == signed.fingerprint
    event = AuditEvent.objects.get(action="access_review.signed_off")
    assert event.actor_username == "compliance" and event.target_id == str(signed.pk)
    assert event.data["fingerprint"] == signed.fingerprint and event.data["period"] == signed.period
    assert event.data["signature"]["method"] == "password"


def test_a_stale_browser_session_must_sign_again(world, settings):
    settings.PROMPTLEDGER_REAUTH_MAX_AGE = 300
    stale = Signature("session", timezone.now() - datetime.timedelta(minutes=30))
    with pytest.raises(PermissionDenied) as refused:
        _sign(world, signature=stale)
    assert refused.value.code == "reauth_required"
    assert not AccessReviewSignOff.objects.exists()


def test_a_report_that_changed_since_it_was_read_is_not_signed(world):
    seen = access_review.fingerprint(access_review.build(actor=Actor(user=world["compliance"])))
    set_named_approvers(actor=now_signed(world["owner"]), prompt=world["loan"], approvers=["owner"])
    with pytest.raises(Conflict) as refused:
        _sign(world, fingerprint=seen)
    assert refused.value.code == "report_changed"


def test_a_future_quarter_cannot_be_signed(world):
    with pytest.raises(Exception) as refused:
        _sign(world, period="2999-Q1")
    assert refused.value.code == "invalid" and "period" in refused.value.field_errors


def test_a_sign_off_can_never_be_changed_or_removed(world, postgres):
    signed = _sign(world)
    signed.comment = "edited afterwards"
    with pytest.raises(ImmutableRowError):
        signed.save()
    with pytest.raises(ImmutableRowError):
        signed.delete()
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE risk_accessreviewsignoff SET comment = 'x' WHERE id = %s", [signed.pk])
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM risk_accessreviewsignoff WHERE id = %s", [signed.pk])


@pytest.mark.parametrize("who", ["author", "viewer", "owner", "admin"])
def test_only_compliance_signs_off(world, who):
    with pytest.raises(PermissionDenied) as refused:
        _sign(world, who=who)
    assert refused.value.code == "site_role_required"


@pytest.mark.parametrize("who", ["author", "viewer", "owner"])
def test_team_members_cannot_read_the_review(world, who):
    with pytest.raises(PermissionDenied):
        access_review.build(actor=Actor(user=world[who]))


# --- the page, the downloads and the API ------------------------------------------------------------
@pytest.mark.parametrize(("who", "status"), [("compliance", 200), ("admin", 200), ("author", 403), ("viewer", 403)])
def test_the_page_and_its_csv_are_for_compliance_and_admins(world, browser_for, who, status):
    client = browser_for(who)
    assert client.get("/compliance/access-review/").status_code == status
    response = client.get("/compliance/access-review/export/?format=csv")
    assert response.status_code == status
    if status == 200:
        assert response["Content-Disposition"].startswith('attachment; filename="access-review-')
        assert response["X-Report-Fingerprint"][:12] in response["Content-Disposition"]
        assert b"loan-letter" in response.content


def test_the_page_offers_the_sign_off_only_to_compliance(world, browser_for):
    assert b'id="signoff-form"' in browser_for("compliance").get("/compliance/access-review/").content
    assert b'id="signoff-form"' not in browser_for("admin").get("/compliance/access-review/").content


def test_signing_off_in_the_browser_asks_for_the_password_again(world, browser_for, settings):
    settings.PROMPTLEDGER_REAUTH_MAX_AGE = 0
    client = browser_for("compliance")
    page = client.get("/compliance/access-review/")
    assert b'id="reauth-field"' in page.content
    body = {"period": access_review.current_period(), "comment": "All justified.",
            "fingerprint": page.context["fingerprint"]}
    refused = client.post("/compliance/access-review/", body)
    assert refused.status_code == 403 and b"reauth_required" in refused.content
    assert b"All justified." in refused.content  # the comment is kept
    wrong = client.post("/compliance/access-review/", {**body, "password": "not-it"})
    assert wrong.status_code == 403 and b"reauth_failed" in wrong.content
    done = client.post("/compliance/access-review/", {**body, "password": "correct-horse-battery"})
    assert done.status_code == 302
    signed = AccessReviewSignOff.objects.get()
    assert signed.auth_method == "password" and signed.fingerprint == page.context["fingerprint"]
    history = client.get("/compliance/access-review/")
    assert b'id="signoff-history"' in history.content and b"All justified." in history.content


def test_the_api_serves_the_report_and_the_sign_offs_with_audit_read(world, api_for):
    _sign(world)
    response = api_for("compliance", scopes=["audit:read"]).get("/api/v1/access-review/")
    assert response.status_code == 200
    body = response.json()
    assert body["fingerprint"] == access_review.fingerprint(body["report"])
    assert {u["username"] for u in body["report"]["users"]} >= {"owner", "compliance"}
    history = api_for("compliance", scopes=["audit:read"]).get("/api/v1/access-review/sign-offs/")
    assert history.status_code == 200 and history.json()[0]["reviewer_name"] == "compliance"
    scoped = api_for("compliance", scopes=["prompts:read"]).get("/api/v1/access-review/")
    assert scoped.status_code == 403 and scoped.json()["code"] == "scope_missing"
    member = api_for("author", scopes=["audit:read"]).get("/api/v1/access-review/")
    assert member.status_code == 403 and member.json()["code"] == "site_role_required"
