"""Every policy requirement of a request, evaluated now: the one place that decides whether a
person may decide on a request and whether it may be deployed.

``refusal_to_decide`` answers "may this person approve (or reject) this request?" with the first
reason they may not; ``checklist`` lists each requirement of the request with its state and the
reason, and ``first_unmet`` turns the checklist into the error a refused deploy raises. The
services call these inside the transaction that holds the request's row lock; the request page
shows the same checklist, so the browser and the API give the same reasons.
"""

from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property

from django.contrib.auth import get_user_model

from core.errors import Conflict, PermissionDenied
from registry import hooks
from registry.models import Deployment, PromptVersion

from .models import Approval, DeployRequest
from .policy import (
    eligible_approver_ids,
    model_key,
    named_approver_ids,
    named_approvers_by_prompt,
    policies,
    policy_for,
    team_approvers_by_team,
)


@dataclass(frozen=True)
class Requirement:
    key: str
    label: str
    met: bool
    detail: str
    code: str  # the error code a deploy refused on this requirement carries
    status: int = 403

    def error(self):
        cls = Conflict if self.status == 409 else PermissionDenied
        return cls(self.detail, code=self.code)


def _authored_span(request):
    """``(after, upto)``: the version numbers whose authors authored what the request puts live are
    those above ``after`` (None: from the first) up to and including ``upto``."""
    number, base = request.version.number, request.base_version
    if base is None:
        return None, number
    return (base.number, number) if base.number < number else (number - 1, number)


def authors_by_request(requests):
    """``{request pk: author_ids(request)}`` for any number of requests, in one query."""
    spans = {r.pk: (r.prompt_id, *_authored_span(r)) for r in requests if r.version is not None}
    authors = {r.pk: set() for r in requests}
    if not spans:
        return authors
    versions = PromptVersion.objects.filter(
        prompt_id__in={prompt_id for prompt_id, _, _ in spans.values()},
        number__lte=max(upto for _, _, upto in spans.values()),
    )
    if all(after is not None for _, after, _ in spans.values()):
        versions = versions.filter(number__gt=min(after for _, after, _ in spans.values()))
    numbered = defaultdict(list)
    for prompt_id, number, author_id in versions.values_list("prompt_id", "number", "author_id"):
        numbered[prompt_id].append((number, author_id))
    for pk, (prompt_id, after, upto) in spans.items():
        authors[pk] = {a for n, a in numbered[prompt_id] if n <= upto and (after is None or n > after)}
    return authors


def author_ids(request):
    """Everyone who authored content in what the request puts live: the versions after the one
    live when the request was opened, up to and including the requested one (just the requested
    version's author when it goes back to an older number)."""
    return authors_by_request([request])[request.pk]


class DecisionFacts:
    """What ``refusal_to_decide`` reads about a batch of requests (their authors, their teams'
    approvers, their prompts' named approvers, the tier policies), each kind fetched once for the
    whole batch when a request first needs it: deciding on a list (an inbox) takes a fixed number
    of queries however long the list is."""

    def __init__(self, requests):
        self.requests = list(requests)

    @cached_property
    def policies(self):
        return {policy.tier: policy for policy in policies()}

    @cached_property
    def authors(self):
        return authors_by_request(self.requests)

    @cached_property
    def team_approvers(self):
        return team_approvers_by_team({r.prompt.team_id for r in self.requests})

    @cached_property
    def named_approvers(self):
        return named_approvers_by_prompt({r.prompt_id for r in self.requests})


def refusal_to_decide(request, user, *, policy=None, facts=None):
    """The ``DomainError`` that forbids ``user`` deciding on ``request`` now, or ``None``. Asking
    about many requests, pass ``facts``: the ``DecisionFacts`` of all of them."""
    facts = facts or DecisionFacts([request])
    policy = policy or facts.policies[request.prompt.tier]
    if user is None:
        return PermissionDenied("only a person can approve; a service or the system cannot", code="not_a_person")
    if user.pk in facts.authors[request.pk]:
        return PermissionDenied(
            "you authored content in this version, so you cannot approve it (segregation of duties)",
            code="author_cannot_approve",
        )
    if user.pk == request.requested_by_id:
        return PermissionDenied("you opened this request, so you cannot approve it", code="self_approval")
    if not user.is_active or user.pk not in facts.team_approvers[request.prompt.team_id]:
        return PermissionDenied(
            f"only active approvers and owners of team '{request.prompt.team.slug}' can decide on its requests",
            code="not_eligible_approver",
        )
    if policy.named_approvers_only and user.pk not in facts.named_approvers[request.prompt_id]:
        return PermissionDenied(
            f"tier-{policy.tier} requests are decided by the prompt's named approvers, and you are not one",
            code="not_named_approver",
        )
    return None


def binding(request):
    """What an approval binds to; a decision made under any other binding does not count."""
    policy = policy_for(request.prompt.tier)
    return {
        "content_hash": request.content_hash,
        "environment": request.environment.slug if request.environment_id else "",
        "model_key": model_key(request.version),
        "tier": request.prompt.tier,
        "policy_version": policy.version,
    }


def _carried_requests(request):
    """Promoting a live canary to full carries the canary request's approvals: they bind to the
    same content hash, environment, model and policy, which is exactly what the promotion puts live."""
    if request.kind != DeployRequest.DEPLOY or request.canary_percent is not None or request.version is None:
        return []
    pointer = Deployment.objects.filter(prompt_id=request.prompt_id, environment_id=request.environment_id).first()
    if pointer is None or pointer.canary_version_id != request.version_id:
        return []
    return list(
        DeployRequest.objects.filter(
            prompt_id=request.prompt_id,
            environment_id=request.environment_id,
            version_id=request.version_id,
            canary_percent__isnull=False,
            status=DeployRequest.DEPLOYED,
        ).values_list("pk", flat=True)
    )


def counted_approvals(request, policy=None):
    """The live approvals that count now: bound to this request's binding, each by a person who
    is still eligible, each person once (a carried canary approval included)."""
    policy = policy or policy_for(request.prompt.tier)
    bound = binding(request)
    request_ids = [request.pk, *_carried_requests(request)]
    live = Approval.objects.filter(
        request_id__in=request_ids, decision=Approval.APPROVE, withdrawn_at__isnull=True, **bound
    ).select_related("user")
    eligible = eligible_approver_ids(request.prompt, policy)
    authors = author_ids(request)
    counted = {}
    for approval in live:
        uid = approval.user_id
        if uid in eligible and uid not in authors and uid != request.requested_by_id:
            counted.setdefault(uid, approval)
    return list(counted.values())


def live_rejections(request):
    return list(
        Approval.objects.filter(request=request, decision=Approval.REJECT, withdrawn_at__isnull=True).select_related(
            "user"
        )
    )


def _state(request):
    if request.status in (DeployRequest.PENDING, DeployRequest.APPROVED, DeployRequest.REJECTED):
        return Requirement("state", "The request is open", True, f"open ({request.status})", "stale_request", 409)
    detail = {
        DeployRequest.DEPLOYED: "this request was already deployed",
        DeployRequest.WITHDRAWN: "this request was withdrawn",
        DeployRequest.SUPERSEDED: "a newer request for this prompt and environment superseded this one",
    }[request.status]
    return Requirement("state", "The request is open", False, detail, "stale_request", 409)


def _base_unchanged(request):
    pointer = Deployment.objects.filter(prompt_id=request.prompt_id, environment_id=request.environment_id).first()
    live_id = pointer.version_id if pointer else None
    if live_id == request.base_version_id:
        return Requirement(
            "base", "What is live has not changed since the request", True, "unchanged", "stale_request", 409
        )
    live = PromptVersion.objects.filter(pk=live_id).values_list("number", flat=True).first()
    return Requirement(
        "base",
        "What is live has not changed since the request",
        False,
        f"v{live} went live in {request.environment.slug} after this request was opened against "
        f"{'v' + str(request.base_version.number) if request.base_version else 'nothing'}; open a new request",
        "stale_request",
        409,
    )


def _approvals(request, policy):
    needed = policy.required_approvals
    counted = counted_approvals(request, policy)
    names = ", ".join(sorted(a.user.get_username() for a in counted)) or "none"
    who = "named approvers" if policy.named_approvers_only else "team approvers"
    label = f"{needed} approval{'s' if needed != 1 else ''} from {who}, not the author or requester"
    met = len(counted) >= needed
    detail = f"{len(counted)} of {needed} ({names})"
    if not met and policy.named_approvers_only and not named_approver_ids(request.prompt):
        detail += "; this prompt has no named approvers yet: its owner must name them"
    return Requirement("approvals", label, met, detail, "insufficient_approvals")


def _rejections(request):
    rejections = live_rejections(request)
    if not rejections:
        return Requirement("rejections", "No standing rejection", True, "none", "rejected")
    who = ", ".join(r.user.get_username() for r in rejections)
    return Requirement(
        "rejections", "No standing rejection", False,
        f"rejected by {who}; a rejection stands until the person who made it withdraws it", "rejected", 409,
    )


def _model(request, policy):
    entry = request.version.llm_model
    allowed = policy.allowed_model_statuses
    met = entry.status in allowed
    detail = f"{entry} is {entry.status}" + ("" if met else f"; tier {policy.tier} allows {', '.join(allowed)}")
    return Requirement("model", f"The model is allowed for tier {policy.tier}", met, detail, "model_not_approved")


def _gate(request, policy, *, actor, record):
    from evals.gates import evaluate_gate

    result = evaluate_gate(
        actor=actor, prompt=request.prompt, version=request.version, environment=request.environment,
        record_decision=record, required=policy.requires_gate,
    )
    failed = [c["detail"] for c in result["checks"] if not c["passed"]]
    detail = "passed" if result["passed"] else "; ".join(failed)
    return Requirement("gate", "The eval gate passes on this content hash", result["passed"], detail, "gate_failed")


def checklist(request, *, actor, record_gate=False):
    """Each requirement of ``request`` under the policy in force now, in the order a deploy checks
    them. ``record_gate`` audits the gate decision (the deploy does; showing the page does not)."""
    policy = policy_for(request.prompt.tier)
    items = [_state(request), _rejections(request)]
    if request.kind == DeployRequest.TIER_CHANGE:
        items.append(_approvals(request, policy))
        return items
    items.append(_base_unchanged(request))
    if policy.required_approvals:
        items.append(_approvals(request, policy))
    if policy.requires_gate:
        items.append(_gate(request, policy, actor=actor, record=record_gate))
    items.append(_model(request, policy))
    # The model risk register's checks (risk/: an overdue review, a tier restriction), when installed.
    register_checks = hooks.provided("deploy_requirements")
    if register_checks is not None:
        items.extend(register_checks(request, policy))
    return items


def first_unmet(items):
    return next((item for item in items if not item.met), None)


def waiting_for(request):
    """Ids of the users who could still approve the request now: the policy's eligible approvers
    with no live decision on it, each passing ``refusal_to_decide`` (the approve service's rule)."""
    if not request.is_open:
        return set()
    policy = policy_for(request.prompt.tier)
    decided = Approval.objects.filter(request=request, withdrawn_at__isnull=True).values_list("user_id", flat=True)
    candidates = get_user_model().objects.filter(
        pk__in=eligible_approver_ids(request.prompt, policy), is_active=True
    ).exclude(pk__in=decided)
    facts = DecisionFacts([request])
    return {user.pk for user in candidates if refusal_to_decide(request, user, policy=policy, facts=facts) is None}
