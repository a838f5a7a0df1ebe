"""The model reviews API and the access review, under /api/v1/ beside the register's own llm-models endpoints."""

from django.urls import path

from . import views

app_name = "risk-api"

urlpatterns = [
    path("llm-models/<int:model_id>/reviews/", views.ModelReviewsView.as_view(), name="model-reviews"),
    path("access-review/", views.AccessReviewView.as_view(), name="access-review"),
    path("access-review/sign-offs/", views.AccessReviewSignOffsView.as_view(), name="access-review-sign-offs"),
]
