"""Requests, approvals, rejections and deploys fire the signed webhooks of the webhooks subsystem:
one delivery per subscription, written in the change's transaction."""

import json

from approvals import services
from webhooks.models import Delivery
from webhooks.services import create_subscription

from .conftest import act


def test_request_approval_rejection_and_deploy_each_write_a_delivery(flow, production):
    create_subscription(actor=act(flow["owner"]), url="http://127.0.0.1:9/hook", events=["*"], team=flow["team"])
    request = services.open_request(
        actor=act(flow["owner"]), prompt=flow["v2"].prompt, version=flow["v2"], environment=production,
        rationale="friendlier",
    )
    services.reject(actor=act(flow["approver"]), request=request,
                    comment="tone")
    services.withdraw_decision(actor=act(flow["approver"]), request=request)
    services.approve(actor=act(flow["approver"]), request=request)
    services.approve(actor=act(flow["approver2"]), request=request)
    services.deploy(actor=act(flow["owner"]), request=request)
    events = list(Delivery.objects.order_by("id").values_list("event", flat=True))
    wanted = ["deploy_request.opened", "deploy_request.rejected", "deploy_request.approved",
              "deploy_request.approved", "deployment.changed"]
    assert [e for e in events if e in set(wanted)] == wanted
    opened = json.loads(Delivery.objects.filter(event="deploy_request.opened").get().body)
    assert opened["data"]["id"] == request.pk and opened["data"]["requester"] == "owner"
    moved = json.loads(Delivery.objects.filter(event="deployment.changed").get().body)["data"]
    assert (moved["environment"], moved["to_version"], moved["from_version"]) == ("production", 2, 1)
