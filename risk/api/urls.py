"""The model reviews API and the access review, under /api/v1/ beside the register's own llm-models endpoints,
and a deploy's evidence pack."""

from django.urls import path

from . import evidence, views

app_name = "risk-api"

urlpatterns = [
    path("llm-models/<int:model_id>/reviews/", views.ModelReviewsView.as_view(), name="model-reviews"),
    # A deploy's evidence pack, beside approvals' own deploy-requests/ routes (approvals cannot import risk).
    path("deploy-requests/<int:pk>/evidence", evidence.EvidencePackView.as_view(), name="deploy-request-evidence"),
    path("access-review/", views.AccessReviewView.as_view(), name="access-review"),
    path("access-review/sign-offs/", views.AccessReviewSignOffsView.as_view(), name="access-review-sign-offs"),
]
