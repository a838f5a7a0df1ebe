"""The token rules in the service: which scopes a person's roles allow, the expiry (90 days by
default, never beyond the operator's maximum), who may issue, see and revoke, and the audit trail."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditEvent
from core.actors import Actor
from core.errors import NotFound, PermissionDenied, ValidationFailed
from registry.models import APIToken, SiteRole
from registry.services import tokens
from tests.factories import UserFactory

ALL = ["prompts:read", "prompts:write", "evals:run", "deploy", "audit:read"]


def issue(username_or_user, cast, scopes, *, by=None, **kwargs):
    user = cast[username_or_user] if isinstance(username_or_user, str) else username_or_user
    actor = Actor(user=cast[by] if by else user)
    return tokens.issue_token(actor=actor, user=user, scopes=scopes, **kwargs)


def test_grantable_scopes_follow_the_persons_roles(cast):
    risk = UserFactory(username="risk")
    SiteRole.objects.create(user=risk, role=SiteRole.RISK)
    nobody = UserFactory(username="nobody")
    gone = UserFactory(username="gone", is_active=False)
    assert tokens.grantable_scopes(cast["viewer"]) == ["prompts:read", "audit:read"]
    for role in ("author", "approver", "owner", "admin"):
        assert tokens.grantable_scopes(cast[role]) == ALL, role
    assert tokens.grantable_scopes(cast["compliance"]) == ["prompts:read", "audit:read"]
    assert tokens.grantable_scopes(risk) == ["prompts:read", "prompts:write", "audit:read"]
    assert tokens.grantable_scopes(nobody) == ["prompts:read", "audit:read"]  # reading is everyone's
    assert tokens.grantable_scopes(gone) == []


def test_a_superuser_may_hold_every_scope(db):
    root = UserFactory(username="root", is_superuser=True)
    assert tokens.grantable_scopes(root) == ALL


def test_a_scope_beyond_the_roles_is_refused_and_named(cast):
    with pytest.raises(ValidationFailed) as err:
        issue("viewer", cast, ["prompts:read", "deploy", "evals:run"])
    assert err.value.status == 400 and err.value.code == "scope_not_allowed"
    assert "deploy" in err.value.detail and "evals:run" in err.value.detail
    assert "deploy" in err.value.field_errors["scopes"][0]
    assert not APIToken.objects.exists()
    assert not AuditEvent.objects.filter(action="token.issued").exists()


def test_an_admin_issuing_for_someone_is_held_to_that_persons_roles(cast):
    with pytest.raises(ValidationFailed) as err:
        issue("viewer", cast, ["prompts:write"], by="admin")
    assert err.value.code == "scope_not_allowed"
    token, _ = issue("viewer", cast, ["prompts:read"], by="admin")
    assert token.user == cast["viewer"]


def test_the_operators_command_may_issue_any_scope(cast):
    token, _ = tokens.issue_token(actor=Actor.for_system(), user=cast["viewer"], scopes=["deploy"])
    assert token.scopes == ["deploy"]


def test_unknown_and_missing_scopes_are_refused(cast):
    for scopes in (["root"], [], "prompts:read"):
        with pytest.raises(ValidationFailed) as err:
            issue("author", cast, scopes)
        assert err.value.code == "invalid_scope"


def test_expiry_defaults_to_90_days(cast):
    before = timezone.now()
    token, _ = issue("author", cast, ["prompts:read"])
    assert before + timedelta(days=90) <= token.expires_at <= timezone.now() + timedelta(days=90)


def test_the_default_expiry_never_passes_a_lower_maximum(cast, settings):
    settings.PROMPTLEDGER_TOKEN_MAX_DAYS = 30
    token, _ = issue("author", cast, ["prompts:read"])
    assert token.expires_at <= timezone.now() + timedelta(days=30)


@pytest.mark.parametrize("offset", [timedelta(days=31), timedelta(seconds=-1), timedelta(0)])
def test_an_expiry_past_the_maximum_or_not_in_the_future_is_refused(cast, settings, offset):
    settings.PROMPTLEDGER_TOKEN_MAX_DAYS = 30
    with pytest.raises(ValidationFailed) as err:
        issue("author", cast, ["prompts:read"], expires_at=timezone.now() + offset)
    assert err.value.code == "invalid_expiry"
    assert "30 days" in err.value.field_errors["expires_at"][0]
    assert not APIToken.objects.exists()


def test_an_expiry_at_the_maximum_is_allowed(cast, settings):
    settings.PROMPTLEDGER_TOKEN_MAX_DAYS = 30
    token, _ = issue("author", cast, ["prompts:read"], expires_at=timezone.now() + timedelta(days=30))
    assert token.expires_at > timezone.now() + timedelta(days=29)


def test_only_an_admins_token_mints_tokens(cast):
    author_token, _ = issue("author", cast, ALL)
    through_token = Actor(user=cast["author"], token=author_token)
    assert not tokens.may_issue_token(through_token, cast["author"])
    with pytest.raises(PermissionDenied) as err:
        tokens.issue_token(actor=through_token, user=cast["author"], scopes=["prompts:read"])
    assert err.value.code == "token_cannot_issue"
    admin_token, _ = issue("admin", cast, ["prompts:read"])
    assert tokens.may_issue_token(Actor(user=cast["admin"], token=admin_token), cast["viewer"])
    assert APIToken.objects.count() == 2


def test_a_token_never_outgrows_the_admin_token_that_mints_it(cast):
    week = timezone.now() + timedelta(days=7)
    admin_token, _ = issue("admin", cast, ["prompts:read", "audit:read"], expires_at=week)
    through_token = Actor(user=cast["admin"], token=admin_token)
    with pytest.raises(ValidationFailed) as err:
        tokens.issue_token(actor=through_token, user=cast["admin"], scopes=["prompts:read", "deploy"])
    assert err.value.code == "scope_not_allowed" and "issuing" in err.value.field_errors["scopes"][0]
    with pytest.raises(ValidationFailed) as err:
        tokens.issue_token(
            actor=through_token, user=cast["admin"], scopes=["prompts:read"], expires_at=week + timedelta(hours=1)
        )
    assert err.value.code == "invalid_expiry" and "issuing" in err.value.field_errors["expires_at"][0]
    minted, _ = tokens.issue_token(actor=through_token, user=cast["viewer"], scopes=["prompts:read"])
    assert minted.expires_at == admin_token.expires_at  # the default, cut to the minting token's
    event = AuditEvent.objects.filter(action="token.issued").latest("sequence")
    assert event.actor_token == admin_token.prefix


def test_people_issue_their_own_tokens_and_admins_anyones(cast):
    assert tokens.may_issue_token(Actor(user=cast["author"]), cast["author"])
    assert not tokens.may_issue_token(Actor(user=cast["author"]), cast["viewer"])
    assert tokens.may_issue_token(Actor(user=cast["admin"]), cast["viewer"])
    with pytest.raises(PermissionDenied):
        issue("viewer", cast, ["prompts:read"], by="author")


def test_issuing_is_audited_without_the_secret(cast):
    token, raw = issue("author", cast, ["prompts:read", "deploy"], name="ci")
    event = AuditEvent.objects.get(action="token.issued")
    assert event.actor_username == "author" and event.data["for_user"] == "author"
    assert event.data["scopes"] == ["deploy", "prompts:read"] and event.data["prefix"] == token.prefix
    assert event.data["expires_at"]
    assert raw not in str(event.data) and raw[10:] not in str(event.data)


def test_owners_and_admins_revoke_others_get_not_found(cast):
    token, _ = issue("author", cast, ["prompts:read"])
    assert tokens.may_revoke_token(Actor(user=cast["author"]), token)
    assert tokens.may_revoke_token(Actor(user=cast["admin"]), token)
    assert not tokens.may_revoke_token(Actor(user=cast["owner"]), token)
    with pytest.raises(NotFound):
        tokens.revoke_token(actor=Actor(user=cast["owner"]), token=token)
    assert APIToken.objects.get(pk=token.pk).revoked_at is None

    tokens.revoke_token(actor=Actor(user=cast["admin"]), token=token)
    tokens.revoke_token(actor=Actor(user=cast["author"]), token=token)  # again: nothing changes
    assert APIToken.objects.get(pk=token.pk).revoked_at is not None
    events = AuditEvent.objects.filter(action="token.revoked")
    assert [e.actor_username for e in events] == ["admin"]


def test_a_token_may_revoke_itself(cast):
    token, _ = issue("author", cast, ["prompts:read"])
    tokens.revoke_token(actor=Actor(user=cast["author"], token=token), token=token)
    assert tokens.token_state(APIToken.objects.get(pk=token.pk)) == tokens.REVOKED


def test_people_see_their_own_tokens_and_admins_everyones(cast):
    mine, _ = issue("author", cast, ["prompts:read"])
    theirs, _ = issue("viewer", cast, ["prompts:read"])
    assert list(tokens.visible_tokens(Actor(user=cast["author"]))) == [mine]
    assert set(tokens.visible_tokens(Actor(user=cast["admin"]))) == {mine, theirs}
    assert list(tokens.visible_tokens(Actor(user=cast["admin"]), username="viewer")) == [theirs]
    with pytest.raises(NotFound):
        tokens.get_visible_token(Actor(user=cast["author"]), theirs.pk)


def test_the_command_takes_an_expiry_in_days(cast, capsys):
    call_command("issue_token", "author", "--scope", "prompts:read", "--days", "7")
    token = APIToken.objects.get(user=cast["author"])
    assert timezone.now() + timedelta(days=6) < token.expires_at <= timezone.now() + timedelta(days=7)
    assert capsys.readouterr().out.split()[-1].startswith("pl_")
