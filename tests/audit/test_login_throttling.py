"""Sign-in is throttled per username and address (django-axes): the sixth wrong password in a row
is refused without checking, even the right one; the lockout is audited once, not each attempt."""

from django.core.management import call_command
from django.test import Client

from audit.models import AuditEvent

PASSWORD = "correct horse battery staple"


def _attempt(client, password):
    return client.post("/accounts/login/", {"username": "viewer", "password": password})


def test_five_wrong_passwords_lock_the_pair_and_the_right_one_then_fails_too(cast, settings):
    viewer = cast["viewer"]
    viewer.set_password(PASSWORD)
    viewer.save()
    client = Client(REMOTE_ADDR="203.0.113.5")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        assert _attempt(client, "wrong").status_code in (200, 429)
    locked = _attempt(client, PASSWORD)
    assert locked.status_code == 429
    assert "Too many wrong passwords" in locked.content.decode()
    for _ in range(10):
        _attempt(client, "wrong again")
    assert AuditEvent.objects.filter(action="auth.locked_out").count() == 1
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == settings.AXES_FAILURE_LIMIT
    assert not AuditEvent.objects.filter(action="auth.login").exists()

    elsewhere = Client(REMOTE_ADDR="198.51.100.9")  # the person, from their own address
    assert _attempt(elsewhere, PASSWORD).status_code == 302

    call_command("axes_reset_username", "viewer")
    assert _attempt(client, PASSWORD).status_code == 302
