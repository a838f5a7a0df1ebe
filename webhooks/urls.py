"""Browser routes of webhooks (mounted at /settings/webhooks/)."""

from django.urls import path

from . import stream_views, views

app_name = "webhooks"
urlpatterns = [
    path("", views.subscription_list, name="list"),
    path("new/", views.subscription_new, name="new"),
    path("<int:subscription_id>/", views.subscription_detail, name="detail"),
    path("<int:subscription_id>/deliveries/", views.delivery_log, name="deliveries"),
    path("<int:subscription_id>/edit/", views.subscription_edit, name="edit"),
    path("<int:subscription_id>/test/", views.subscription_test, name="test"),
    path("<int:subscription_id>/rotate/", views.subscription_rotate, name="rotate"),
    path("<int:subscription_id>/delete/", views.subscription_delete, name="delete"),
    path("deliveries/<int:delivery_id>/redeliver/", views.delivery_redeliver, name="redeliver"),
    # the audit stream to a SIEM (webhooks.stream_views)
    path("streams/", stream_views.stream_list, name="streams"),
    path("streams/new/", stream_views.stream_new, name="stream-new"),
    path("streams/<int:stream_id>/", stream_views.stream_detail, name="stream"),
    path("streams/<int:stream_id>/status/", stream_views.stream_status, name="stream-status"),
    path("streams/<int:stream_id>/edit/", stream_views.stream_edit, name="stream-edit"),
    path("streams/<int:stream_id>/pause/", stream_views.stream_pause, name="stream-pause"),
]
