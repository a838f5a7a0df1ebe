"""Shapes of the webhooks API. They check the shape of a request; ``webhooks.services`` decides
the rest (URL rules, event names, who may do what). The secret appears only in
``SubscriptionSecretSerializer``, the answer to create and rotate."""

import json

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import EVENTS, Delivery, DeliveryAttempt, Subscription


class SubscriptionSerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True, help_text="null: site-wide")
    events = serializers.ListField(child=serializers.CharField(), help_text='Event names, or ["*"] for every event.')
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    pending = serializers.IntegerField(read_only=True, required=False, help_text="Deliveries not yet settled.")
    failed = serializers.IntegerField(read_only=True, required=False, help_text="Deliveries that gave up.")

    class Meta:
        model = Subscription
        fields = [
            "id",
            "team",
            "url",
            "events",
            "active",
            "description",
            "from_settings",
            "created_by",
            "created_at",
            "updated_at",
            "pending",
            "failed",
        ]
        read_only_fields = fields


class SubscriptionSecretSerializer(SubscriptionSerializer):
    secret = serializers.CharField(read_only=True, help_text="Signs every delivery. Shown this once: keep it.")

    class Meta(SubscriptionSerializer.Meta):
        fields = [*SubscriptionSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class SubscriptionCreateSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000, help_text="An http:// or https:// URL that accepts POSTs.")
    events = serializers.ListField(
        child=serializers.CharField(max_length=64), help_text=f'Event names, or ["*"]: {", ".join(EVENTS)}'
    )
    team = serializers.CharField(
        required=False, allow_null=True, help_text="The team's slug; omit or null for site-wide (admins)."
    )
    description = serializers.CharField(required=False, allow_blank=True, max_length=200)
    active = serializers.BooleanField(required=False, default=True)


class SubscriptionUpdateSerializer(serializers.Serializer):
    url = serializers.CharField(required=False, max_length=2000)
    events = serializers.ListField(child=serializers.CharField(max_length=64), required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=200)
    active = serializers.BooleanField(required=False)


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["number", "started_at", "duration_ms", "status_code", "error", "outcome"]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    subscription = serializers.PrimaryKeyRelatedField(read_only=True)
    redelivery_of = serializers.PrimaryKeyRelatedField(read_only=True)
    payload = serializers.SerializerMethodField(help_text="The body sent: {id, event, created_at, data}.")
    attempt_log = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "uuid",
            "subscription",
            "event",
            "event_id",
            "status",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "created_at",
            "delivered_at",
            "redelivery_of",
            "payload",
            "attempt_log",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField())
    def get_payload(self, delivery):
        return json.loads(delivery.body)
