"""/api/v1/ routes of the approval flow."""

from django.urls import path

from . import views

app_name = "approvals-api"
urlpatterns = [
    path("deploy-requests/", views.DeployRequestListView.as_view(), name="request-list"),
    path("deploy-requests/<int:pk>/", views.DeployRequestDetailView.as_view(), name="request-detail"),
    path("deploy-requests/<int:pk>/approve", views.ApproveView.as_view(), name="request-approve"),
    path("deploy-requests/<int:pk>/reject", views.RejectView.as_view(), name="request-reject"),
    path("deploy-requests/<int:pk>/withdraw", views.WithdrawView.as_view(), name="request-withdraw"),
    path(
        "deploy-requests/<int:pk>/withdraw-decision", views.WithdrawDecisionView.as_view(),
        name="request-withdraw-decision",
    ),
    path("deploy-requests/<int:pk>/deploy", views.DeployView.as_view(), name="request-deploy"),
    path("deploy-requests/<int:pk>/sign-review", views.SignReviewView.as_view(), name="request-sign-review"),
    path("prompts/<slug:slug>/break-glass", views.BreakGlassView.as_view(), name="break-glass"),
    path("tier-policies/", views.TierPolicyListView.as_view(), name="policy-list"),
    path("tier-policies/<int:tier>/", views.TierPolicyDetailView.as_view(), name="policy-detail"),
    path("teams/<slug:slug>/approver-groups/", views.ApproverGroupListView.as_view(), name="approver-groups"),
]
