"""/api/v1/ routes of webhooks."""

from django.urls import path

from . import views

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
]
