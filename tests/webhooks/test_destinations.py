"""Webhooks reach the public internet only (SSRF): every spelling of an internal address is
refused when the URL is saved, and a delivery goes to the address that was checked."""

import socket

import pytest

from webhooks import delivery
from webhooks.destinations import DestinationRefused, resolve_destination
from webhooks.models import Delivery

INTERNAL = [
    "127.0.0.1", "[::1]", "localhost", "api.localhost", "2130706433", "0x7f.1", "0177.0.0.1", "127.1",
    "0.0.0.0", "[::]", "169.254.169.254",  # noqa: S104 - addresses to refuse; nothing binds here
    "10.0.0.5", "172.16.3.4", "192.168.1.1", "100.64.1.1",
    "[fc00::1]", "[fe80::1]", "224.0.0.1", "[ff02::1]", "[::ffff:127.0.0.1]", "[::ffff:10.0.0.1]",
    "[2002:7f00:1::]", "192.0.2.10",
]


@pytest.fixture
def no_internal_receivers(settings):
    settings.PROMPTLEDGER_WEBHOOK_ALLOWED_NETWORKS = []


def _create(api, url):
    return api.post("/api/v1/webhooks/", {"url": url, "events": ["*"], "team": "payments"}, format="json")


@pytest.mark.parametrize("host", INTERNAL)
def test_an_internal_address_in_any_spelling_is_refused_when_saved(api_for, no_internal_receivers, host):
    response = _create(api_for("owner"), f"http://{host}:8080/hook")
    assert response.status_code == 400, (host, response.json())
    assert response.json()["code"] == "url_not_allowed"
    assert "url" in response.json()["field_errors"]


def test_a_public_address_or_a_name_is_accepted(api_for, no_internal_receivers):
    assert _create(api_for("owner"), "https://93.184.216.34/hook").status_code == 201
    assert _create(api_for("owner"), "https://hooks.example.com/hook").status_code == 201


def test_an_update_to_an_internal_address_is_refused_too(api_for, no_internal_receivers):
    made = _create(api_for("owner"), "https://hooks.example.com/hook").json()
    response = api_for("owner").patch(f"/api/v1/webhooks/{made['id']}/", {"url": "http://0x7f.1/"}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "url_not_allowed"


def test_the_operator_allows_an_internal_network(api_for, settings):
    settings.PROMPTLEDGER_WEBHOOK_ALLOWED_NETWORKS = ["10.20.0.0/16"]
    assert _create(api_for("owner"), "http://10.20.3.4/hook").status_code == 201
    assert _create(api_for("owner"), "http://10.21.3.4/hook").status_code == 400


def test_a_name_that_resolves_inside_is_refused_at_delivery(no_internal_receivers, monkeypatch):
    # The resolver's answers stand in for a DNS record pointing inside (rebinding): the check is ours.
    answers = {"inside.example.com": ["10.0.0.7"], "mixed.example.com": ["93.184.216.34", "127.0.0.1"],
               "public.example.com": ["93.184.216.34", "2606:2800:220:1::1"]}

    def resolver(host, port, *args, **kwargs):
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with pytest.raises(DestinationRefused, match="resolves to 10.0.0.7"):
        resolve_destination("inside.example.com", 443)
    with pytest.raises(DestinationRefused, match="resolves to 127.0.0.1"):
        resolve_destination("mixed.example.com", 443)  # one inside address is enough to refuse
    assert str(resolve_destination("public.example.com", 443)) == "93.184.216.34"


def test_a_delivery_to_a_receiver_no_longer_allowed_is_not_sent(cast, receiver, subscribe, settings):
    subscription, _ = subscribe(receiver.url)  # allowed while the operator allowed 127.0.0.1
    settings.PROMPTLEDGER_WEBHOOK_ALLOWED_NETWORKS = []
    from core.actors import Actor
    from webhooks import services

    made = services.send_test(actor=Actor(user=cast["owner"]), subscription=subscription)
    row = delivery.attempt(made.pk)
    assert row.status_code is None and row.error.startswith("not sent:")
    assert receiver.requests == []
    assert Delivery.objects.get(pk=made.pk).status == Delivery.PENDING  # retried later, still checked


def test_a_delivery_goes_to_the_checked_address_with_the_name_in_the_host_header(cast, receiver, subscribe,
                                                                                   settings):
    settings.PROMPTLEDGER_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32", "::1/128"]
    url = receiver.url.replace("127.0.0.1", "localhost")
    subscription, _ = subscribe(url)
    from core.actors import Actor
    from webhooks import services

    made = services.send_test(actor=Actor(user=cast["owner"]), subscription=subscription)
    row = delivery.attempt(made.pk)
    assert row.outcome == "delivered", row.error
    receiver.wait_for(1)
    assert receiver.requests[0]["headers"]["Host"] == f"localhost:{receiver.port}"
