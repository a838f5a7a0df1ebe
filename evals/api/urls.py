"""/api/v1/ routes of evals."""

from django.urls import path

from . import views, views_costs

app_name = "evals-api"
urlpatterns = [
    path("suites/", views.SuiteListView.as_view(), name="suite-list"),
    path("suites/<slug:slug>/", views.SuiteDetailView.as_view(), name="suite-detail"),
    path("suites/<slug:slug>/cases/", views.CaseListView.as_view(), name="case-list"),
    path("suites/<slug:slug>/cases/export", views.CaseExportView.as_view(), name="case-export"),
    path("eval-runs/", views.RunListView.as_view(), name="run-list"),
    path("eval-runs/<int:run_id>/", views.RunDetailView.as_view(), name="run-detail"),
    path("eval-runs/<int:run_id>/results/", views.RunResultsView.as_view(), name="run-results"),
    path("eval-runs/<int:run_id>/cancel", views.RunCancelView.as_view(), name="run-cancel"),
    path("eval-runs/<int:run_id>/compare/", views.RunCompareView.as_view(), name="run-compare"),
    path("prompts/<slug:slug>/gate", views.GateView.as_view(), name="gate"),
    path("prompts/<slug:slug>/versions/<int:number>/gate", views.VersionGateView.as_view(), name="version-gate"),
    path("prompts/<slug:slug>/notices", views.PromptNoticeListView.as_view(), name="prompt-notices"),
    path("costs/", views_costs.CostReportView.as_view(), name="costs"),
    path("teams/<slug:slug>/budget", views_costs.TeamBudgetView.as_view(), name="team-budget"),
    path("teams/<slug:slug>/budget/override", views_costs.BudgetOverrideView.as_view(), name="budget-override"),
    path("notices/<int:notice_id>/acknowledge", views.NoticeAcknowledgeView.as_view(), name="notice-acknowledge"),
]
