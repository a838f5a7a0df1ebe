"""Shapes of the audit streams API. They check the shape of a request; ``webhooks.stream_services``
decides the rest (names, the URL's SSRF rules, ranges, who may do what). The receiver's token is
write-only: an answer says whether one is set (``has_token``), never what it is."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .. import stream_services
from ..models import AuditStream

URL_HELP = ("An http:// or https:// URL that accepts POSTed batches (Splunk HEC: ending in /services/collector); "
            "the webhooks' SSRF rules apply.")


class AuditStreamSerializer(serializers.ModelSerializer):
    """A stream's settings and its status as its page shows it. The full ``url`` is shown only to
    whoever may manage streams (the serializer's context says, ``may_manage``); its path or query may
    carry a credential, so others see ``display_url``, as on the page."""

    url = serializers.SerializerMethodField(help_text="The receiver URL; null unless you may manage streams.")
    display_url = serializers.CharField(read_only=True, help_text="Scheme and host only, safe to show anyone.")
    has_token = serializers.SerializerMethodField(help_text="Whether a receiver token is set (it is never shown).")
    lag_events = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="Events written after the cursor, not yet acknowledged."
    )
    lag_seconds = serializers.FloatField(
        read_only=True, allow_null=True, help_text="Age of the oldest unacknowledged event (0 when caught up)."
    )
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = AuditStream
        fields = [
            "id",
            "name",
            "url",
            "display_url",
            "format",
            "sourcetype",
            "batch_size",
            "interval_seconds",
            "active",
            "has_token",
            "cursor",
            "cursor_hash",
            "lag_events",
            "lag_seconds",
            "delivered_events",
            "last_success_at",
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "failures",
            "next_attempt_at",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "cursor": {"help_text": "The last sequence the receiver acknowledged (its position in the chain)."},
            "cursor_hash": {"help_text": "That event's chain hash: the next batch links to it."},
            "failures": {"help_text": "Failed batches in a row; the next try is at next_attempt_at."},
            "delivered_events": {"help_text": "Events acknowledged by the receiver, in all."},
        }

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_url(self, stream):
        return stream.url if self.context.get("may_manage") else None

    @extend_schema_field(serializers.BooleanField())
    def get_has_token(self, stream):
        return bool(stream.token)


class AuditStreamUpdateSerializer(serializers.Serializer):
    url = serializers.CharField(required=False, help_text=URL_HELP)
    format = serializers.ChoiceField(choices=AuditStream.FORMAT_CHOICES, required=False)
    token = serializers.CharField(
        required=False, allow_blank=True, write_only=True,
        help_text="Sent as `Authorization: Splunk <token>` (HEC) or `Bearer <token>` (JSON lines); stored sealed, "
        "never returned. On PATCH: omit to keep the current one, \"\" to remove it.",
    )
    sourcetype = serializers.CharField(
        required=False, allow_blank=True, help_text="HEC only; promptledger:audit when empty."
    )
    batch_size = serializers.IntegerField(
        required=False, min_value=stream_services.BATCH_RANGE[0], max_value=stream_services.BATCH_RANGE[1],
        help_text="Events per batch (500 by default).",
    )
    interval_seconds = serializers.IntegerField(
        required=False, min_value=stream_services.INTERVAL_RANGE[0], max_value=stream_services.INTERVAL_RANGE[1],
        help_text="Seconds between batches once caught up (10 by default).",
    )

    # Fields a caller may expect to change here, each pointing to where it is changed instead, so a
    # script's PATCH is refused rather than silently ignored.
    ELSEWHERE = {
        "name": "a stream's name cannot be changed",
        "active": "use POST .../pause or .../resume",
        "start": "where a stream starts is chosen when it is created",
    }

    def validate(self, attrs):
        misplaced = {name: [why] for name, why in self.ELSEWHERE.items() if name in self.initial_data}
        if misplaced:
            raise serializers.ValidationError(misplaced)
        return attrs


class AuditStreamCreateSerializer(AuditStreamUpdateSerializer):
    ELSEWHERE = {"active": "a new stream is active; pause it with POST .../pause"}

    name = serializers.CharField(help_text="Lower-case letters, digits and hyphens, at most 50, e.g. splunk-prod.")
    url = serializers.CharField(help_text=URL_HELP)
    token = serializers.CharField(
        required=False, allow_blank=True, write_only=True,
        help_text="Sent as `Authorization: Splunk <token>` (HEC) or `Bearer <token>` (JSON lines); stored sealed, "
        "never returned.",
    )
    start = serializers.ChoiceField(
        choices=stream_services.STARTS, required=False,
        help_text="beginning: every event from the first one (default, a complete, verifiable copy); now: only "
        "events written from now on.",
    )
