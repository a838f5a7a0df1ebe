"""Audit streams API views (/api/v1/audit-streams/): parse, call ``webhooks.stream_services``, shape
the answer, as thin as the stream pages, which call the same functions. Seeing a stream is
``audit_stream.read`` (``audit:read``: admins, compliance); changing one is ``audit_stream.manage``
(``prompts:write``: admins, a person). A change to an existing stream looks it up first, as its page
does, so its token needs both scopes."""

from functools import cached_property

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.response import Response

from core.auth import actor_from
from core.serializers import ErrorSerializer, validated_data
from registry.api.views import ERRORS

from .. import stream_services
from .stream_serializers import AuditStreamCreateSerializer, AuditStreamSerializer, AuditStreamUpdateSerializer

UNCHANGED = {409: OpenApiResponse(ErrorSerializer, description="Already so: `audit_stream_unchanged`.")}


class _StreamView(GenericAPIView):
    serializer_class = AuditStreamSerializer

    @cached_property
    def actor(self):
        return actor_from(self.request)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "may_manage": stream_services.may_manage(self.actor)}

    def _get(self, stream_id):
        """The stream with its lag, as its page reads it (404 unknown, 403 for who may not see streams)."""
        return stream_services.get_stream(actor=self.actor, stream_id=stream_id)

    def _answer(self, stream):
        return self.get_serializer(stream).data


class AuditStreamListView(_StreamView, ListAPIView):
    def get_queryset(self):
        return stream_services.streams(self.actor)

    @extend_schema(
        summary="Audit streams to a SIEM, by name, each with its cursor and lag (admins, compliance)",
        responses={200: AuditStreamSerializer(many=True), **ERRORS},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Start streaming the audit trail to a SIEM (admins). The token is write-only: the answer says "
        "whether one is set.",
        request=AuditStreamCreateSerializer,
        responses={201: AuditStreamSerializer, **ERRORS},
    )
    def post(self, request):
        data = validated_data(AuditStreamCreateSerializer, request)
        stream = stream_services.create_stream(actor=self.actor, **data)
        if stream_services.may_read(self.actor):  # a prompts:write token without audit:read: no lag in the answer
            stream = self._get(stream.pk)
        return Response(self._answer(stream), status=status.HTTP_201_CREATED)


class AuditStreamDetailView(_StreamView):
    @extend_schema(
        summary="One audit stream: its settings, cursor, lag, last success and last error",
        responses={200: AuditStreamSerializer, **ERRORS},
    )
    def get(self, request, stream_id):
        return Response(self._answer(self._get(stream_id)))

    @extend_schema(
        summary="Change where and how a stream sends (admins); its cursor stays",
        request=AuditStreamUpdateSerializer,
        responses={200: AuditStreamSerializer, **ERRORS},
    )
    def patch(self, request, stream_id):
        stream = self._get(stream_id)
        data = validated_data(AuditStreamUpdateSerializer, request, partial=True)
        stream_services.update_stream(actor=self.actor, stream=stream, **data)
        return Response(self._answer(self._get(stream_id)))


class _SetActiveView(_StreamView):
    active = None

    def post(self, request, stream_id):
        stream_services.set_active(actor=self.actor, stream=self._get(stream_id), active=self.active)
        return Response(self._answer(self._get(stream_id)))


class AuditStreamPauseView(_SetActiveView):
    active = False

    @extend_schema(
        summary="Pause a stream (admins): nothing is sent, its cursor waits",
        request=None,
        responses={200: AuditStreamSerializer, **ERRORS, **UNCHANGED},
    )
    def post(self, request, stream_id):
        return super().post(request, stream_id)


class AuditStreamResumeView(_SetActiveView):
    active = True

    @extend_schema(
        summary="Resume a paused stream (admins): it catches up from its cursor",
        request=None,
        responses={200: AuditStreamSerializer, **ERRORS, **UNCHANGED},
    )
    def post(self, request, stream_id):
        return super().post(request, stream_id)
