"""/api/v1/ routes of webhooks and of the audit streams to a SIEM."""

from django.urls import path

from . import stream_views, views

app_name = "webhooks-api"
urlpatterns = [
    path("webhooks/", views.SubscriptionListView.as_view(), name="subscription-list"),
    path("webhooks/<int:subscription_id>/", views.SubscriptionDetailView.as_view(), name="subscription-detail"),
    path(
        "webhooks/<int:subscription_id>/rotate-secret", views.RotateSecretView.as_view(), name="subscription-rotate"
    ),
    path("webhooks/<int:subscription_id>/test", views.SendTestView.as_view(), name="subscription-test"),
    path("webhooks/<int:subscription_id>/deliveries/", views.DeliveryListView.as_view(), name="delivery-list"),
    path("webhooks/deliveries/<int:delivery_id>/redeliver", views.RedeliverView.as_view(), name="redeliver"),
    # the audit streams to a SIEM (stream_views)
    path("audit-streams/", stream_views.AuditStreamListView.as_view(), name="stream-list"),
    path("audit-streams/<int:stream_id>/", stream_views.AuditStreamDetailView.as_view(), name="stream-detail"),
    path("audit-streams/<int:stream_id>/pause", stream_views.AuditStreamPauseView.as_view(), name="stream-pause"),
    path("audit-streams/<int:stream_id>/resume", stream_views.AuditStreamResumeView.as_view(), name="stream-resume"),
]
