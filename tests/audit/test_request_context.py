"""The audit trail records who asked without believing what the client says about itself."""

import re

from django.test import Client

from audit.models import AuditEvent


def _create_team(api, **headers):
    return api.post("/api/v1/teams/", {"slug": "ops", "name": "Ops"}, format="json", **headers)


def test_a_forwarded_for_header_from_a_client_changes_nothing(api_for):
    response = _create_team(api_for("admin"), HTTP_X_FORWARDED_FOR="6.6.6.6", REMOTE_ADDR="198.51.100.7")
    assert response.status_code == 201
    assert AuditEvent.objects.get(action="team.created").ip == "198.51.100.7"


def test_behind_a_trusted_proxy_the_first_untrusted_hop_from_the_right_is_the_client(api_for, settings):
    settings.PROMPTLEDGER_TRUSTED_PROXIES = ["10.0.0.0/8"]
    response = _create_team(api_for("admin"), REMOTE_ADDR="10.0.0.2",
                            HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9, 10.1.2.3")
    assert response.status_code == 201
    assert AuditEvent.objects.get(action="team.created").ip == "203.0.113.9"  # 6.6.6.6 was the client's own claim


def test_the_request_id_is_the_servers_and_the_clients_is_kept_apart_cleaned(api_for):
    response = _create_team(api_for("admin"), HTTP_X_REQUEST_ID='ci-42"=HYPERLINK(x)<b>' + "y" * 100,
                            HTTP_USER_AGENT="curl/8\r\nX-Evil: 1\x00")
    event = AuditEvent.objects.get(action="team.created")
    assert re.fullmatch(r"[0-9a-f]{32}", event.request_id)
    assert response["X-Request-ID"] == event.request_id
    assert event.data["client_request_id"] == ("ci-42HYPERLINKxb" + "y" * 100)[:64]
    assert event.user_agent == "curl/8X-Evil: 1"


def test_a_failed_login_keeps_a_known_username_and_never_an_unknown_one(cast):
    Client().post("/accounts/login/", {"username": "viewer", "password": "wrong"})
    Client().post("/accounts/login/", {"username": "hunter2-my-password", "password": "x"})
    failed = list(AuditEvent.objects.filter(action="auth.login_failed").order_by("sequence"))
    assert [event.data["username"] for event in failed] == ["viewer", None]
    assert "hunter2" not in str(AuditEvent.objects.values_list("data", flat=True))
