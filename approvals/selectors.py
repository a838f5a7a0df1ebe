"""Read queries of the approval flow: the requests an actor may see, and the inbox of each person
(waiting for me, my requests, reviews to sign, recent decisions). Visibility follows the prompt's:
who can read a prompt can read its requests."""

from django.contrib.auth import get_user_model

from core.errors import NotFound
from registry.models import Membership
from registry.permissions import visible_prompts

from .models import Approval, DeployRequest
from .requirements import DecisionFacts, refusal_to_decide
from .requirements import waiting_for as waiting_for_request

RELATED = (
    "prompt__team", "version__llm_model", "llm_model", "environment", "base_version", "requested_by", "deployed_by",
)


def visible_requests(actor):
    return DeployRequest.objects.filter(prompt__in=visible_prompts(actor)).select_related(*RELATED)


def get_request(actor, pk):
    request = visible_requests(actor).filter(pk=pk).first()
    if request is None:
        raise NotFound(f"no deploy request #{pk} (or it is not visible to you)", code="not_found")
    return request


def filtered(actor, *, prompt=None, environment=None, status=None, kind=None, requested_by=None):
    qs = visible_requests(actor)
    if prompt:
        qs = qs.filter(prompt__slug=prompt)
    if environment:
        qs = qs.filter(environment__slug=environment)
    if status:
        qs = qs.filter(status__in=status.split(","))
    if kind:
        qs = qs.filter(kind=kind)
    if requested_by:
        qs = qs.filter(requested_by__username=requested_by)
    return qs


def approver_memberships(user):
    """The memberships through which ``user`` could decide on requests (approver or owner of an
    active account): no such row, nothing can ever wait for them."""
    return Membership.objects.filter(user=user, user__is_active=True, role__in=[Membership.APPROVER, Membership.OWNER])


def _candidate_requests(user, queryset):
    teams = approver_memberships(user).values_list("team_id", flat=True)
    decided = Approval.objects.filter(user=user, withdrawn_at__isnull=True).values_list("request_id", flat=True)
    return queryset.filter(prompt__team_id__in=teams).exclude(pk__in=decided).select_related(*RELATED)


def waiting_for(user, *, limit=200):
    """Open requests ``user`` may approve now and has not decided on, oldest first, up to ``limit``.
    Candidates are read a batch at a time until ``limit`` are found, so older requests the person
    cannot decide never hide newer ones they can."""
    if user is None:
        return []
    candidates = _candidate_requests(user, DeployRequest.objects.filter(status__in=DeployRequest.OPEN))
    candidates = candidates.order_by("created_at", "id")
    found, start, batch = [], 0, limit * 2
    while len(found) < limit:
        requests = list(candidates[start:start + batch])
        facts = DecisionFacts(requests)
        found += [r for r in requests if refusal_to_decide(r, user, facts=facts) is None]
        if len(requests) < batch:
            break
        start += batch
    return found[:limit]


def pending_count(user):
    """How many open requests ``user`` could approve now (the navigation's count): the inbox's
    rule (``waiting_for``), so the count and the inbox never disagree. A person who approves for
    no team costs one query; an approver a fixed handful, however many requests are open."""
    if user is None or not approver_memberships(user).exists():
        return 0
    return len(waiting_for(user))


def who_can_still_sign(request):
    """The people who could still approve ``request`` now, by name (``requirements.waiting_for``:
    the rule the approve service applies), in username order; empty once the request is closed."""
    return list(get_user_model().objects.filter(pk__in=waiting_for_request(request)).order_by("username"))


def reviews_waiting_for(user):
    """Break-glass rollbacks whose post-hoc review ``user`` may sign."""
    if user is None:
        return []
    requests = _candidate_requests(user, DeployRequest.objects.filter(review_status=DeployRequest.REVIEW_PENDING))
    requests = list(requests.order_by("created_at"))
    facts = DecisionFacts(requests)
    return [r for r in requests if refusal_to_decide(r, user, facts=facts) is None]


def requested_by(user, *, limit=50):
    return DeployRequest.objects.filter(requested_by=user).select_related(*RELATED)[:limit]


def recent_decisions(actor, *, limit=50):
    """The newest approvals, rejections and sign-offs on requests the actor can see."""
    return (
        Approval.objects.filter(request__in=visible_requests(actor))
        .select_related("user", "request__prompt", "request__version", "request__environment")
        .order_by("-created_at", "-id")[:limit]
    )
