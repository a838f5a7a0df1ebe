"""Webhooks API views: parse, call a service or selector, shape the answer."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.response import Response

from core.auth import actor_from
from core.errors import ValidationFailed
from core.serializers import validated_data
from registry.api.views import ERRORS
from registry.models import Team

from .. import selectors, services
from .serializers import (
    DeliverySerializer,
    SubscriptionCreateSerializer,
    SubscriptionSecretSerializer,
    SubscriptionSerializer,
    SubscriptionUpdateSerializer,
)

CONFLICT = {409: OpenApiResponse(description="Not now: `code` says why (e.g. `delivery_pending`).")}


def _team(slug):
    if not slug:
        return None
    team = Team.objects.filter(slug=slug).first()
    if team is None:
        raise ValidationFailed(f"no team '{slug}'", code="unknown_team", field_errors={"team": [f"no team '{slug}'"]})
    return team


def _with_secret(subscription, secret):
    data = SubscriptionSecretSerializer(subscription).data
    data["secret"] = secret
    return data


class SubscriptionListView(ListAPIView):
    serializer_class = SubscriptionSerializer

    def get_queryset(self):
        return selectors.manageable_subscriptions(actor_from(self.request))

    @extend_schema(summary="Webhooks you manage (your teams' as their owner; every one for admins)")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Subscribe a URL to events (team owners; site-wide: admins). The secret is in this answer only.",
        request=SubscriptionCreateSerializer,
        responses={201: SubscriptionSecretSerializer, **ERRORS},
    )
    def post(self, request):
        data = validated_data(SubscriptionCreateSerializer, request)
        subscription, secret = services.create_subscription(
            actor=actor_from(request),
            url=data["url"],
            events=data["events"],
            team=_team(data.get("team")),
            description=data.get("description", ""),
            active=data.get("active", True),
        )
        return Response(_with_secret(subscription, secret), status=status.HTTP_201_CREATED)


class SubscriptionDetailView(GenericAPIView):
    serializer_class = SubscriptionSerializer

    def _get(self, request, subscription_id):
        return selectors.get_subscription(actor=actor_from(request), subscription_id=subscription_id)

    @extend_schema(summary="One webhook", responses={200: SubscriptionSerializer, **ERRORS})
    def get(self, request, subscription_id):
        return Response(SubscriptionSerializer(self._get(request, subscription_id)).data)

    @extend_schema(
        summary="Change a webhook's URL, events, description or active flag",
        request=SubscriptionUpdateSerializer,
        responses={200: SubscriptionSerializer, **ERRORS, **CONFLICT},
    )
    def patch(self, request, subscription_id):
        subscription = self._get(request, subscription_id)
        data = validated_data(SubscriptionUpdateSerializer, request, partial=True)
        updated = services.update_subscription(actor=actor_from(request), subscription=subscription, **data)
        return Response(SubscriptionSerializer(updated).data)

    @extend_schema(
        summary="Delete a webhook and its delivery log", responses={204: None, **ERRORS, **CONFLICT}
    )
    def delete(self, request, subscription_id):
        services.delete_subscription(actor=actor_from(request), subscription=self._get(request, subscription_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RotateSecretView(GenericAPIView):
    serializer_class = SubscriptionSecretSerializer

    @extend_schema(
        summary="Replace the signing secret; the new one is in this answer only",
        request=None,
        responses={200: SubscriptionSecretSerializer, **ERRORS, **CONFLICT},
    )
    def post(self, request, subscription_id):
        actor = actor_from(request)
        subscription = selectors.get_subscription(actor=actor, subscription_id=subscription_id)
        subscription, secret = services.rotate_secret(actor=actor, subscription=subscription)
        return Response(_with_secret(subscription, secret))


class SendTestView(GenericAPIView):
    serializer_class = DeliverySerializer

    @extend_schema(
        summary="Queue a `ping` to this webhook (202: poll its deliveries)",
        request=None,
        responses={202: DeliverySerializer, **ERRORS, **CONFLICT},
    )
    def post(self, request, subscription_id):
        actor = actor_from(request)
        subscription = selectors.get_subscription(actor=actor, subscription_id=subscription_id)
        delivery = services.send_test(actor=actor, subscription=subscription)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class DeliveryListView(ListAPIView):
    serializer_class = DeliverySerializer

    def get_queryset(self):
        subscription = selectors.get_subscription(
            actor=actor_from(self.request), subscription_id=self.kwargs["subscription_id"]
        )
        return selectors.deliveries(subscription, status=self.request.query_params.get("status") or None)

    @extend_schema(
        summary="A webhook's delivery log, newest first, each with every attempt",
        parameters=[OpenApiParameter("status", str, enum=["pending", "delivered", "failed"])],
        responses={200: DeliverySerializer(many=True), **ERRORS},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class RedeliverView(GenericAPIView):
    serializer_class = DeliverySerializer

    @extend_schema(
        summary="Send a delivered or failed delivery again, as a new delivery (202)",
        request=None,
        responses={202: DeliverySerializer, **ERRORS, **CONFLICT},
    )
    def post(self, request, delivery_id):
        actor = actor_from(request)
        delivery = selectors.get_delivery(actor=actor, delivery_id=delivery_id)
        again = services.redeliver(actor=actor, delivery=delivery)
        return Response(DeliverySerializer(again).data, status=status.HTTP_202_ACCEPTED)
