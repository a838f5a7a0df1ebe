"""Races on PostgreSQL with real threads: concurrent approvals are each counted once, concurrent
deploys of one request deploy it once and the others get 409."""

import threading

import pytest
from django.db import connections

from approvals import services
from approvals.models import Approval, DeployRequest
from audit.models import AuditEvent
from core.errors import DomainError
from registry.models import Deployment, Membership
from tests.factories import MembershipFactory, UserFactory

from .conftest import act


def race(count, work):
    """Run ``work(i)`` in ``count`` threads released together; returns each outcome."""
    barrier = threading.Barrier(count)
    outcomes = [None] * count

    def runner(index):
        try:
            barrier.wait(timeout=10)
            outcomes[index] = ("ok", work(index))
        except DomainError as exc:
            outcomes[index] = (exc.code, exc.status)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion
            outcomes[index] = ("crash", repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


@pytest.fixture
def request_v2(flow, production):
    return services.open_request(
        actor=act(flow["owner"]), prompt=flow["v2"].prompt, version=flow["v2"], environment=production,
        rationale="race",
    )


@pytest.mark.django_db(transaction=True)
def test_the_same_approver_approving_at_once_from_eight_threads_counts_once(postgres, flow, request_v2):
    outcomes = race(8, lambda i: services.approve(actor=act(flow["approver"]), request=request_v2).pk)
    assert sorted(o[0] for o in outcomes) == ["already_approved"] * 7 + ["ok"], outcomes
    assert Approval.objects.filter(request=request_v2, user=flow["approver"]).count() == 1
    assert AuditEvent.objects.filter(action="deploy_request.approved").count() == 1


@pytest.mark.django_db(transaction=True)
def test_distinct_approvers_at_once_are_each_counted(postgres, flow, request_v2):
    people = [flow["approver"], flow["approver2"]]
    for n in range(4):
        user = UserFactory(username=f"named-{n}")
        MembershipFactory(team=flow["team"], user=user, role=Membership.APPROVER)
        people.append(user)
    from approvals.administration import set_named_approvers

    set_named_approvers(actor=act(flow["owner"]), prompt=request_v2.prompt, approvers=[u.username for u in people])
    outcomes = race(len(people), lambda i: services.approve(actor=act(people[i]), request=request_v2).pk)
    assert all(o[0] == "ok" for o in outcomes), outcomes
    assert Approval.objects.filter(request=request_v2).count() == len(people)
    request_v2.refresh_from_db()
    assert request_v2.status == DeployRequest.APPROVED


@pytest.mark.django_db(transaction=True)
def test_deploying_one_request_at_once_from_eight_threads_deploys_once(postgres, flow, request_v2, production):
    services.approve(actor=act(flow["approver"]), request=request_v2)
    services.approve(actor=act(flow["approver2"]), request=request_v2)
    outcomes = race(8, lambda i: services.deploy(actor=act(flow["owner"]), request=request_v2).status)
    assert sorted(outcomes) == [("ok", "deployed")] + [("stale_request", 409)] * 7, outcomes
    assert AuditEvent.objects.filter(action="deploy_request.deployed").count() == 1
    pointer = Deployment.objects.get(prompt=request_v2.prompt, environment=production)
    assert pointer.version == flow["v2"]
    assert pointer.history.filter(version=flow["v2"]).count() == 1
