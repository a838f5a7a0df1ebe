"""Approval flow API views: parse, call a service or selector, shape the answer. A refusal is the
service's ``DomainError`` (403 or 409 with a code saying why), mapped by the API's one handler."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.response import Response

from core import access
from core.auth import actor_from
from core.errors import NotFound, ValidationFailed
from core.serializers import validated_data
from core.tiers import TIERS
from registry import selectors as registry_selectors
from registry.api.serializers import ErrorSerializer
from registry.api.views import ERRORS, PromptScopedView
from registry.models import Team
from registry.services.deployments import get_environment

from .. import administration, selectors, services
from ..models import ApproverGroup, DeployRequest
from ..policy import policies, policy_for
from ..requirements import checklist, first_unmet
from .serializers import (
    ApproverGroupSerializer,
    BreakGlassSerializer,
    CommentSerializer,
    DeployRequestCreateSerializer,
    DeployRequestDetailSerializer,
    DeployRequestSerializer,
    TierPolicySerializer,
    TierPolicyUpdateSerializer,
)

REFUSALS = {
    **ERRORS,
    409: OpenApiResponse(ErrorSerializer, description="The request's state forbids it now (`stale_request`, ...)."),
}


def detail(actor, request):
    """The request with its decisions and the checklist of every requirement, evaluated now."""
    request.approval_list = list(request.approvals.select_related("user"))
    request.checklist = checklist(request, actor=actor) if request.is_open else []
    request.deployable = bool(request.checklist) and first_unmet(request.checklist) is None
    return DeployRequestDetailSerializer(request).data


def _required(data, field, what):
    if data.get(field) in (None, ""):
        raise ValidationFailed(f"{field} is required for {what}", field_errors={field: ["this field is required"]})
    return data[field]


class DeployRequestListView(ListAPIView):
    serializer_class = DeployRequestSerializer

    def get_queryset(self):
        actor = actor_from(self.request)
        access.require(actor, "read")
        params = self.request.query_params
        if params.get("waiting_for") == "me":
            ids = [r.pk for r in selectors.waiting_for(actor.user)]
            return selectors.visible_requests(actor).filter(pk__in=ids).order_by("created_at", "id")
        return selectors.filtered(
            actor, prompt=params.get("prompt"), environment=params.get("environment"), status=params.get("status"),
            kind=params.get("kind"),
            requested_by=actor.username if params.get("requested_by") == "me" else params.get("requested_by"),
        )

    @extend_schema(
        summary="Deploy requests you can see, newest first",
        parameters=[
            OpenApiParameter("prompt", str), OpenApiParameter("environment", str),
            OpenApiParameter("status", str, description="One or more of pending, approved, deployed, rejected, "
                             "withdrawn, superseded (comma-separated)."),
            OpenApiParameter("kind", str), OpenApiParameter("requested_by", str, description="A username, or `me`."),
            OpenApiParameter("waiting_for", str, description="`me`: open requests you may approve and have not "
                             "decided on (your inbox)."),
        ],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Open a deploy, rollback or tier-change request (Tier-3 deploys at once)",
        request=DeployRequestCreateSerializer, responses={201: DeployRequestDetailSerializer, **REFUSALS},
    )
    def post(self, request):
        actor = actor_from(request)
        data = validated_data(DeployRequestCreateSerializer, request)
        prompt = registry_selectors.get_visible_prompt(actor=actor, slug=data["prompt"])
        kind = data["kind"]
        if kind == DeployRequest.TIER_CHANGE:
            made = services.open_tier_change(
                actor=actor, prompt=prompt, target_tier=_required(data, "tier", "a tier change"),
                rationale=data["rationale"],
            )
        else:
            environment = get_environment(_required(data, "environment", "a deploy request"))
            if kind == DeployRequest.ROLLBACK and data.get("version") is None:
                made = services.open_rollback(
                    actor=actor, prompt=prompt, environment=environment, rationale=data["rationale"]
                )
            else:
                number = _required(data, "version", "a deploy request")
                version = prompt.versions.filter(number=number).first()
                if version is None:
                    raise ValidationFailed(
                        f"'{prompt.slug}' has no version {number}", code="unknown_version",
                        field_errors={"version": [f"no version {number}"]},
                    )
                made = services.open_request(
                    actor=actor, prompt=prompt, version=version, environment=environment,
                    rationale=data["rationale"], canary_percent=data.get("canary_percent"), kind=kind,
                )
        return Response(detail(actor, selectors.get_request(actor, made.pk)), status=status.HTTP_201_CREATED)


class DeployRequestDetailView(GenericAPIView):
    serializer_class = DeployRequestDetailSerializer

    @extend_schema(summary="One request: its decisions and the checklist of every requirement, evaluated now")
    def get(self, request, pk):
        actor = actor_from(request)
        access.require(actor, "read")
        return Response(detail(actor, selectors.get_request(actor, pk)))


def _action(name, service, *, summary, body=None):
    """A POST endpoint on one request that calls ``service`` and answers the request's detail."""

    class ActionView(GenericAPIView):
        serializer_class = body or CommentSerializer

        @extend_schema(
            summary=summary, request=body, responses={200: DeployRequestDetailSerializer, **REFUSALS},
            operation_id=f"deploy_requests_{name}",
        )
        def post(self, request, pk):
            actor = actor_from(request)
            access.require(actor, "read")
            target = selectors.get_request(actor, pk)
            kwargs = {}
            if body is not None:
                kwargs["comment"] = validated_data(body, request)["comment"]
            service(actor=actor, request=target, **kwargs)
            return Response(detail(actor, selectors.get_request(actor, pk)))

    ActionView.__name__ = f"DeployRequest{name.title().replace('_', '')}View"
    return ActionView


ApproveView = _action("approve", services.approve, summary="Approve (named approvers; not the author or requester)",
                      body=CommentSerializer)
RejectView = _action("reject", services.reject, summary="Reject with a comment (blocks until withdrawn)",
                     body=CommentSerializer)
SignReviewView = _action("sign_review", services.sign_review, summary="Sign a break-glass rollback's review",
                         body=CommentSerializer)
WithdrawView = _action("withdraw", services.withdraw_request, summary="Withdraw an open request (its requester)")
WithdrawDecisionView = _action(
    "withdraw_decision", services.withdraw_decision, summary="Withdraw your own approval or rejection"
)
DeployView = _action(
    "deploy", services.deploy, summary="Deploy: re-checks every requirement under the request's lock, then moves "
    "the pointer (409 stale_request when it was already deployed)",
)


class BreakGlassView(PromptScopedView):
    serializer_class = BreakGlassSerializer

    @extend_schema(
        summary="Break-glass rollback (owners): at once, with a reason, to a version live here before; "
        "opens a post-hoc review", request=BreakGlassSerializer,
        responses={201: DeployRequestDetailSerializer, **REFUSALS},
    )
    def post(self, request, slug):
        actor, prompt = self.prompt(request, slug)
        data = validated_data(BreakGlassSerializer, request)
        version = prompt.versions.filter(number=data["version"]).first()
        if version is None:
            raise ValidationFailed(f"no version {data['version']}", field_errors={"version": ["no such version"]})
        made = services.break_glass_rollback(
            actor=actor, prompt=prompt, environment=get_environment(data["environment"]), version=version,
            reason=data["reason"],
        )
        return Response(detail(actor, selectors.get_request(actor, made.pk)), status=status.HTTP_201_CREATED)


class TierPolicyListView(ListAPIView):
    serializer_class = TierPolicySerializer
    pagination_class = None

    def get_queryset(self):
        access.require(actor_from(self.request), "read")
        return policies()

    @extend_schema(summary="The tier policies in force")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class TierPolicyDetailView(GenericAPIView):
    serializer_class = TierPolicySerializer

    def _policy(self, request, tier):
        access.require(actor_from(request), "read")
        if tier not in TIERS:
            raise NotFound(f"no tier {tier}")
        return policy_for(tier)

    @extend_schema(summary="One tier's policy")
    def get(self, request, tier):
        return Response(TierPolicySerializer(self._policy(request, tier)).data)

    @extend_schema(
        summary="Edit a tier's policy (admins); its version goes up and earlier approvals stop counting",
        request=TierPolicyUpdateSerializer, responses={200: TierPolicySerializer, **ERRORS},
    )
    def patch(self, request, tier):
        self._policy(request, tier)
        data = validated_data(TierPolicyUpdateSerializer, request)
        reason = data.pop("reason", None)
        policy = administration.update_policy(actor=actor_from(request), tier=tier, reason=reason, **data)
        return Response(TierPolicySerializer(policy).data)


class ApproverGroupListView(GenericAPIView):
    serializer_class = ApproverGroupSerializer
    pagination_class = None

    def _team(self, request, slug):
        actor = actor_from(request)
        access.require(actor, "read")
        team = Team.objects.filter(slug=slug).first()
        if team is None or not (actor.reads_everything or team.memberships.filter(user=actor.user).exists()):
            raise NotFound(f"no team '{slug}'")
        return actor, team

    @staticmethod
    def _shape(group):
        return {"slug": group.slug, "name": group.name,
                "members": sorted(member.username for member in group.members.all())}

    @extend_schema(summary="A team's approver groups", responses={200: ApproverGroupSerializer(many=True)})
    def get(self, request, slug):
        _, team = self._team(request, slug)
        groups = ApproverGroup.objects.filter(team=team).prefetch_related("members")  # not a query per group
        return Response([self._shape(g) for g in groups])

    @extend_schema(
        summary="Create or replace an approver group (team owners)", request=ApproverGroupSerializer,
        responses={200: ApproverGroupSerializer, **ERRORS},
    )
    def post(self, request, slug):
        actor, team = self._team(request, slug)
        data = validated_data(ApproverGroupSerializer, request)
        group = administration.save_approver_group(actor=actor, team=team, **data)
        return Response(self._shape(group))
