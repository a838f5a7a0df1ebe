"""Accounts change only through audited services: the operator's ``manage.py user`` and no
Django admin back door (the admin shows users read-only and no groups)."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from audit.models import AuditEvent
from core.actors import Actor
from core.errors import PermissionDenied, ValidationFailed
from registry.services import set_user_flags

GOOD = "correct horse battery staple 42"


def run(*args, stdin=None, monkeypatch=None):
    out = io.StringIO()
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    call_command("user", *args, stdout=out)
    return out.getvalue()


def test_the_operator_creates_an_account_sets_its_password_and_flags_all_audited(db, monkeypatch):
    run("create", "ava", "--email", "ava@example.org")
    run("set-password", "ava", "--password-stdin", stdin=GOOD + "\n", monkeypatch=monkeypatch)
    run("flags", "ava", "--superuser", "yes")
    run("deactivate", "ava")
    ava = get_user_model().objects.get(username="ava")
    assert ava.check_password(GOOD) and ava.is_superuser and not ava.is_active
    actions = list(AuditEvent.objects.filter(target_type="user").values_list("action", flat=True))
    assert actions == ["user.created", "user.password_set", "user.flags_changed", "user.flags_changed"]
    flags = AuditEvent.objects.filter(action="user.flags_changed").first()
    assert flags.data["is_superuser"] == {"before": False, "after": True}
    assert flags.actor_type == "system" and flags.request_id == "manage.py user"
    dumped = str(list(AuditEvent.objects.values_list("data", flat=True)))
    assert GOOD not in dumped and ava.password not in dumped


def test_a_weak_password_and_an_unknown_user_are_clear_errors(db, monkeypatch):
    run("create", "bo")
    with pytest.raises(CommandError, match="too weak"):
        run("set-password", "bo", "--password-stdin", stdin="123\n", monkeypatch=monkeypatch)
    with pytest.raises(CommandError, match="no user 'nobody'"):
        run("deactivate", "nobody")


def test_only_admins_change_accounts(cast):
    with pytest.raises(PermissionDenied):
        set_user_flags(actor=Actor(user=cast["owner"]), username="viewer", is_superuser=True)
    with pytest.raises(ValidationFailed):
        set_user_flags(actor=Actor(user=cast["admin"]), username="viewer", is_superuser="yes")
    set_user_flags(actor=Actor(user=cast["admin"]), username="viewer", is_active=False)
    assert not get_user_model().objects.get(username="viewer").is_active


def test_a_deactivated_persons_token_stops_working_at_once(api_for, cast):
    client = api_for("author")
    assert client.get("/api/v1/prompts/").status_code == 200
    set_user_flags(actor=Actor(user=cast["admin"]), username="author", is_active=False)
    assert client.get("/api/v1/prompts/").status_code == 401


def test_the_admin_shows_users_read_only_and_no_groups(cast):
    cast["admin"].is_superuser = cast["admin"].is_staff = True
    cast["admin"].save()
    client = Client()
    client.force_login(cast["admin"])
    assert client.get("/admin/auth/user/").status_code == 200
    viewer = cast["viewer"]
    page = client.get(f"/admin/auth/user/{viewer.pk}/change/")
    assert page.status_code == 200 and b'name="is_superuser"' not in page.content
    changed = client.post(f"/admin/auth/user/{viewer.pk}/change/", {"is_superuser": "on", "username": "viewer"})
    assert changed.status_code == 403
    viewer.refresh_from_db()
    assert not viewer.is_superuser
    assert client.get("/admin/auth/group/").status_code == 404
    assert client.get("/admin/auth/user/add/").status_code == 403
