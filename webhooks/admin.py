"""Read-only admin for inspection; subscriptions change through webhooks.services only, audit streams
through webhooks.stream_services."""

from django.contrib import admin

from registry.admin import ReadOnlyAdmin

from .models import AuditStream, Delivery, DeliveryAttempt, Subscription


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    list_display = ["id", "team", "display_url", "active", "from_settings", "created_at"]
    list_filter = ["active", "team"]
    exclude = ["secret", "url"]
    readonly_fields = ["display_url"]


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ["id", "subscription", "event", "status", "attempts", "last_status_code", "created_at"]
    list_filter = ["status", "event"]


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(ReadOnlyAdmin):
    list_display = ["delivery", "number", "started_at", "duration_ms", "status_code", "outcome"]
    list_filter = ["outcome"]


@admin.register(AuditStream)
class AuditStreamAdmin(ReadOnlyAdmin):
    list_display = ["name", "display_url", "format", "active", "cursor", "last_success_at", "last_error"]
    list_filter = ["active", "format"]
    exclude = ["token", "url"]
    readonly_fields = ["display_url"]
