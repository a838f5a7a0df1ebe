"""Read-only admin for inspection; subscriptions change through webhooks.services only."""

from django.contrib import admin

from registry.admin import ReadOnlyAdmin

from .models import Delivery, DeliveryAttempt, Subscription


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
