"""The model reviews API, under /api/v1/ beside the register's own llm-models endpoints, and a deploy's
evidence pack."""

from django.urls import path

from . import evidence, views

app_name = "risk-api"

urlpatterns = [
    path("llm-models/<int:model_id>/reviews/", views.ModelReviewsView.as_view(), name="model-reviews"),
    # A deploy's evidence pack, beside approvals' own deploy-requests/ routes (approvals cannot import risk).
    path("deploy-requests/<int:pk>/evidence", evidence.EvidencePackView.as_view(), name="deploy-request-evidence"),
]
