"""Audit event shape over the API: flat keys, ISO 8601 UTC times."""

from rest_framework import serializers

from ..checks import CHAIN_COLUMNS
from ..models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = list(CHAIN_COLUMNS)
