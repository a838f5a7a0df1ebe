"""Browser routes of eval costs and budgets (mounted at /costs/)."""

from django.urls import path

from . import views_costs

app_name = "costs"
urlpatterns = [
    path("", views_costs.cost_page, name="page"),
    path("export/", views_costs.cost_export, name="export"),
    path("teams/<slug:slug>/budget/", views_costs.budget_save, name="budget-save"),
    path("teams/<slug:slug>/override/", views_costs.budget_override, name="budget-override"),
]
