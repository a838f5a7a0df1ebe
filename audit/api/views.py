"""Audit API: the event list (cursor pagination, newest first) and the streaming export."""

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.pagination import CursorPagination
from rest_framework.views import APIView

from core.auth import actor_from
from core.errors import ValidationFailed
from core.serializers import ErrorSerializer

from ..export import start_export
from ..selectors import clean_filters, filter_events, visible_events
from .serializers import AuditEventSerializer

FILTER_PARAMS = [
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="From this time (ISO 8601), inclusive"),
    OpenApiParameter(
        "until",
        OpenApiTypes.DATETIME,
        description="Up to this time (ISO 8601), exclusive; a date alone includes that day",
    ),
    OpenApiParameter("team", str, description="Team slug"),
    OpenApiParameter("prompt", str, description="Prompt slug"),
    OpenApiParameter(
        "version", int, description="A version number of `prompt` (needs `prompt`): its creation, gate checks, "
        "eval runs, deploy requests, and the deployments that put it live or took it off",
    ),
    OpenApiParameter(
        "deploy_request", int, description="A deploy request's id: its events, and those recorded by the same "
        "requests on its prompt (the deploy's pointer move and gate check)",
    ),
    OpenApiParameter("actor", str, description="Username of who acted"),
    OpenApiParameter(
        "action", str, description="An action (`deployment.changed`) or a prefix ending in a dot (`auth.`)"
    ),
    OpenApiParameter(
        "sign_ins", str, enum=["show", "hide"],
        description="`hide` leaves out successful sign-ins and sign-outs (`auth.login`, `auth.logout`); default "
        "`show`. Failed sign-ins and lockouts always show",
    ),
]


class NewestFirst(CursorPagination):
    ordering = "-sequence"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class AuditEventListView(generics.ListAPIView):
    serializer_class = AuditEventSerializer
    pagination_class = NewestFirst

    @extend_schema(summary="Audit events you may read, newest first", parameters=FILTER_PARAMS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        filters = clean_filters(self.request.query_params)
        return filter_events(visible_events(actor_from(self.request)), filters)


class AuditExportView(APIView):
    @extend_schema(
        summary="Export the audit trail (streamed)",
        description=(
            "JSONL: one event per line, the signed checkpoints the export spans, and a signed manifest last; "
            "check it with `python -m audit.verify FILE`. CSV: the same columns for spreadsheets. "
            "The export is itself an audit event."
        ),
        parameters=[
            OpenApiParameter("format", str, enum=["jsonl", "csv"], description="Default jsonl"),
            *FILTER_PARAMS,
        ],
        responses={
            200: OpenApiResponse(OpenApiTypes.BINARY, description="The export"),
            400: ErrorSerializer,
            401: ErrorSerializer,
            403: ErrorSerializer,
        },
    )
    def get(self, request):
        fmt = request.query_params.get("format", "jsonl")
        if fmt not in ("jsonl", "csv"):
            raise ValidationFailed(f"unknown format '{fmt}'", field_errors={"format": ["jsonl or csv"]})
        filters = clean_filters(request.query_params)
        body = start_export(actor=actor_from(request), format=fmt, filters=filters)
        content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson"
        response = StreamingHttpResponse(body, content_type=content_type)
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="promptledger-audit-{stamp}.{fmt}"'
        return response

    def perform_content_negotiation(self, request, force=False):
        # The export streams its own bytes; ``?format=`` names the export, not a DRF renderer.
        renderers = self.get_renderers()
        return renderers[0], renderers[0].media_type
