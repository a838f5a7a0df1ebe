"""The model reviews API, under /api/v1/ beside the register's own llm-models endpoints."""

from django.urls import path

from . import views

app_name = "risk-api"

urlpatterns = [
    path("llm-models/<int:model_id>/reviews/", views.ModelReviewsView.as_view(), name="model-reviews"),
]
