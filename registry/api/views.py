"""Registry API views: parse, call a service or selector, shape the answer."""

from django.db.models import Max
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from core import access
from core.auth import actor_from
from core.errors import ValidationFailed
from core.serializers import validated_data
from core.tiers import parse_tier

from .. import access_selectors, diffing, hooks, rendering, selectors, services
from ..models import LLMModel, Membership, Team
from ..services.deployments import get_environment
from .resolve import serve as serve_resolve
from .serializers import (
    DiffSerializer,
    ErrorSerializer,
    KillSwitchSerializer,
    LLMModelSerializer,
    LLMModelUpdateSerializer,
    MemberSerializer,
    PromptCreateSerializer,
    PromptDetailSerializer,
    PromptSerializer,
    PromptUpdateSerializer,
    RenderRequestSerializer,
    RenderResponseSerializer,
    ResolveSerializer,
    TeamSerializer,
    VersionCreateSerializer,
    VersionSerializer,
)

ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Bad input; `field_errors` names each field."),
    401: OpenApiResponse(ErrorSerializer, description="No or invalid token."),
    403: OpenApiResponse(ErrorSerializer, description="A rule forbids it; `code` says which."),
    404: OpenApiResponse(ErrorSerializer, description="Not found (or not visible to you)."),
}


def _team(slug, field="team"):
    team = Team.objects.filter(slug=slug).first()
    if team is None:
        raise ValidationFailed(f"no team '{slug}'", code="unknown_team", field_errors={field: [f"no team '{slug}'"]})
    return team


@extend_schema_view(
    list=extend_schema(summary="List teams you belong to (all for admins)"),
    create=extend_schema(summary="Create a team (admins)", responses={201: TeamSerializer, **ERRORS}),
    retrieve=extend_schema(summary="One team"),
)
class TeamViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    serializer_class = TeamSerializer
    lookup_field = "slug"
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        actor = actor_from(self.request)
        access.require(actor, "read")
        return access_selectors.visible_teams(actor)

    def create(self, request):
        data = validated_data(TeamSerializer, request)
        team = services.create_team(actor=actor_from(request), slug=data["slug"], name=data["name"])
        return Response(TeamSerializer(team).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        methods=["GET"], summary="List a team's members", responses={200: MemberSerializer(many=True)}
    )
    @extend_schema(
        methods=["POST"], summary="Add a member or change their role (team owners, admins)",
        request=MemberSerializer, responses={201: MemberSerializer, **ERRORS},
    )
    @action(detail=True, methods=["get", "post"], serializer_class=MemberSerializer)
    def members(self, request, slug=None):
        team = self.get_object()
        if request.method == "GET":
            page = self.paginate_queryset(Membership.objects.filter(team=team).select_related("user"))
            return self.get_paginated_response(MemberSerializer(page, many=True).data)
        data = validated_data(MemberSerializer, request)
        membership = services.add_member(
            actor=actor_from(request), team=team, username=data["username"], role=data["role"]
        )
        return Response(MemberSerializer(membership).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(summary="The model risk register"),
    create=extend_schema(summary="Register a model (risk, admins)", responses={201: LLMModelSerializer, **ERRORS}),
    retrieve=extend_schema(summary="One register entry"),
    partial_update=extend_schema(
        summary="Change owner, status, failure modes or reviews (risk, admins)",
        request=LLMModelUpdateSerializer, responses={200: LLMModelSerializer, **ERRORS},
    ),
)
class LLMModelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                      mixins.UpdateModelMixin, viewsets.GenericViewSet):
    serializer_class = LLMModelSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        access.require(actor_from(self.request), "read")
        qs = LLMModel.objects.select_related("owner").order_by("provider", "model_id")
        for field in ("provider", "status"):
            if self.request.query_params.get(field):
                qs = qs.filter(**{field: self.request.query_params[field]})
        return qs

    def create(self, request):
        data = validated_data(LLMModelSerializer, request)
        entry = services.create_llm_model(
            actor=actor_from(request), provider=data["provider"], model_id=data["model_id"],
            owner=data["owner"]["username"], status=data.get("status", LLMModel.RESTRICTED),
            failure_modes=data.get("failure_modes", ""), last_reviewed_at=data.get("last_reviewed_at"),
            next_review_due=data.get("next_review_due"),
        )
        return Response(LLMModelSerializer(entry).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        entry = self.get_object()
        data = validated_data(LLMModelUpdateSerializer, request, partial=True)
        entry = services.update_llm_model(actor=actor_from(request), llm_model=entry, **data)
        return Response(LLMModelSerializer(entry).data)


PROMPT_FILTERS = [
    OpenApiParameter("team", str, description="Team slug"),
    OpenApiParameter("tier", int, description="0..3"),
    OpenApiParameter("tag", str),
    OpenApiParameter("data_category", str, description="e.g. `pii`: every prompt that touches PII"),
    OpenApiParameter("q", str, description="Search slug, name and description"),
]


@extend_schema_view(
    list=extend_schema(summary="List prompts you can see", parameters=PROMPT_FILTERS),
    create=extend_schema(summary="Create a prompt", request=PromptCreateSerializer,
                         responses={201: PromptDetailSerializer, **ERRORS}),
    retrieve=extend_schema(summary="One prompt, with what is live where", responses={200: PromptDetailSerializer}),
    partial_update=extend_schema(summary="Change a prompt's details", request=PromptUpdateSerializer,
                                 responses={200: PromptDetailSerializer, **ERRORS}),
)
class PromptViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                    mixins.UpdateModelMixin, viewsets.GenericViewSet):
    serializer_class = PromptSerializer
    lookup_field = "slug"
    lookup_value_regex = "[^/]+"
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        actor = actor_from(self.request)
        access.require(actor, "read")
        params = self.request.query_params
        tier = params.get("tier")
        if tier not in (None, ""):
            tier = str(parse_tier(tier).value)
        prompts = selectors.prompt_list(
            actor=actor, team=params.get("team"), tier=tier, tag=params.get("tag"),
            data_category=params.get("data_category"), q=params.get("q"),
        )
        return selectors.with_latest_version(prompts)

    def get_object(self):
        actor = actor_from(self.request)
        access.require(actor, "read")
        return selectors.get_visible_prompt(actor=actor, slug=self.kwargs["slug"])

    def _detail(self, prompt):
        prompt.latest_version = prompt.versions.aggregate(n=Max("number"))["n"]
        prompt.deployments_list = prompt.deployments.select_related(
            "environment", "version", "canary_version", "updated_by"
        )
        named_approvers = hooks.provided("named_approvers")
        prompt.named = named_approvers(prompt) if named_approvers else {"approvers": [], "approver_groups": []}
        return PromptDetailSerializer(prompt).data

    def retrieve(self, request, slug=None):
        return Response(self._detail(self.get_object()))

    def create(self, request):
        data = validated_data(PromptCreateSerializer, request)
        prompt = services.create_prompt(actor=actor_from(request), **{**data, "team": _team(data["team"])})
        return Response(self._detail(prompt), status=status.HTTP_201_CREATED)

    def partial_update(self, request, slug=None):
        prompt = self.get_object()
        data = validated_data(PromptUpdateSerializer, request, partial=True)
        prompt = services.update_prompt(actor=actor_from(request), prompt=prompt, **data)
        return Response(self._detail(prompt))


class PromptScopedView(GenericAPIView):
    """Base for views under /prompts/{slug}/: the prompt is looked up through visibility first."""

    def prompt(self, request, slug):
        actor = actor_from(request)
        access.require(actor, "read")
        return actor, selectors.get_visible_prompt(actor=actor, slug=slug)


class VersionListView(PromptScopedView):
    serializer_class = VersionSerializer

    @extend_schema(summary="List a prompt's versions, newest first", responses={200: VersionSerializer(many=True)})
    def get(self, request, slug):
        _, prompt = self.prompt(request, slug)
        qs = prompt.versions.select_related("author", "parent", "prompt").order_by("-number")
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(VersionSerializer(page, many=True).data)

    @extend_schema(
        summary="Push a version (201 new, 200 when identical content exists)",
        request=VersionCreateSerializer,
        responses={201: VersionSerializer, 200: VersionSerializer, **ERRORS},
    )
    def post(self, request, slug):
        actor, prompt = self.prompt(request, slug)
        data = validated_data(VersionCreateSerializer, request)
        version, created = services.create_version(
            actor=actor, prompt=prompt, messages=[dict(m) for m in data["messages"]],
            variables={k: dict(v) for k, v in data["variables"].items()}, model=dict(data["model"]),
            message=data["message"],
        )
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(VersionSerializer(version).data, status=code)


class VersionDetailView(PromptScopedView):
    serializer_class = VersionSerializer

    @extend_schema(summary="One version", responses={200: VersionSerializer, **ERRORS})
    def get(self, request, slug, number):
        _, prompt = self.prompt(request, slug)
        return Response(VersionSerializer(selectors.get_version(prompt=prompt, number=number)).data)


class VersionDiffView(PromptScopedView):
    serializer_class = DiffSerializer

    @extend_schema(
        summary="Diff a version against another (default: its parent)",
        parameters=[OpenApiParameter("against", int, description="The other version's number")],
        responses={200: DiffSerializer, **ERRORS},
    )
    def get(self, request, slug, number):
        _, prompt = self.prompt(request, slug)
        new = selectors.get_version(prompt=prompt, number=number)
        against = request.query_params.get("against")
        if against in (None, ""):
            if new.parent is None:
                raise ValidationFailed(
                    "version 1 has no parent; say which version to compare with",
                    field_errors={"against": ["required for the first version"]},
                )
            old = new.parent
        else:
            if not against.isdigit():
                raise ValidationFailed("against must be a version number", field_errors={"against": ["an integer"]})
            old = selectors.get_version(prompt=prompt, number=against)
        return Response({
            "prompt": prompt.slug, "from_version": old.number, "to_version": new.number,
            "unified": diffing.unified(old, new), "messages": diffing.per_message(old, new),
        })


class RenderView(PromptScopedView):
    serializer_class = RenderRequestSerializer

    @extend_schema(
        summary="Render a version's messages with variables",
        request=RenderRequestSerializer, responses={200: RenderResponseSerializer, **ERRORS},
    )
    def post(self, request, slug, number):
        _, prompt = self.prompt(request, slug)
        version = selectors.get_version(prompt=prompt, number=number)
        data = validated_data(RenderRequestSerializer, request)
        messages = rendering.render(version.messages, version.variables, data["variables"])
        return Response({
            "prompt": prompt.slug, "version": version.number, "content_hash": version.content_hash,
            "messages": messages, "model": version.model_config,
        })


class KillSwitchView(PromptScopedView):
    serializer_class = KillSwitchSerializer

    @extend_schema(
        summary="Disable (or re-enable) a prompt in one environment, at once",
        request=KillSwitchSerializer, responses={200: KillSwitchSerializer, **ERRORS},
    )
    def post(self, request, slug):
        actor, prompt = self.prompt(request, slug)
        data = validated_data(KillSwitchSerializer, request)
        pointer = services.set_kill_switch(
            actor=actor, prompt=prompt, environment=get_environment(data["environment"]),
            disabled=data["disabled"], reason=data["reason"],
        )
        return Response({"environment": pointer.environment.slug, "disabled": pointer.disabled,
                         "reason": pointer.disabled_reason})


class ResolveView(APIView):
    """The hot path, served by a plain Django view (``registry.api.resolve.serve``): the caller and
    the pointer from the resolve cache (one query when not cached), and the immutable version bodies
    cached in-process. Bearer-token requests are mostly answered before they get here, by
    ``config.resolve_path``, with the same ``serve``; browser sessions come here.

    DRF's request wrapping, content negotiation and authentication classes cost more than the
    resolve itself, so ``as_view`` returns ``serve`` directly; it carries ``cls`` as DRF's own views
    do, so drf-spectacular still documents it from ``get`` below. ``serve`` keeps DRF's answers:
    Bearer token first, else the browser session; errors as ``{"code", "detail", "field_errors"}``.
    """

    @classmethod
    def as_view(cls, **initkwargs):
        view = csrf_exempt(cls.serve)  # as DRF's views: tokens, not cookies, authenticate the API
        view.cls, view.initkwargs = cls, initkwargs
        return view

    @extend_schema(
        summary="The version deployed to an environment",
        description=(
            "ETag is the content hash; send it back in `If-None-Match` for a 304. `unit` buckets the caller "
            "deterministically onto a canary. 404 when nothing is deployed, 423 "
            '`{"code": "prompt_disabled"}` when kill-switched.'
        ),
        parameters=[
            OpenApiParameter("environment", str, required=True),
            OpenApiParameter("unit", str, description="A stable id (user, session) for canary bucketing"),
            OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER),
        ],
        responses={
            200: ResolveSerializer,
            304: OpenApiResponse(description="Not modified: the ETag sent in `If-None-Match` is still deployed"),
            423: OpenApiResponse(ErrorSerializer, description="Kill-switched"),
            **ERRORS,
        },
    )
    def get(self, request, slug):
        return self.serve(request._request, slug)

    serve = staticmethod(serve_resolve)
