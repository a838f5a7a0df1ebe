"""Audit event shape over the API: flat keys, ISO 8601 UTC times."""

from rest_framework import serializers

from ..models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "sequence",
            "occurred_at",
            "actor_type",
            "actor_id",
            "actor_username",
            "actor_token",
            "action",
            "target_type",
            "target_id",
            "team",
            "prompt",
            "data",
            "request_id",
            "ip",
            "user_agent",
            "prev_hash",
            "hash",
        ]
