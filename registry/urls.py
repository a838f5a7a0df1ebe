"""Browser routes of the registry, plus the section still to come (approvals; evals has its own, in
``evals.urls``). A prompt's History tab is the audit app's page, routed here beside the prompt's
other pages."""
from django.urls import path

from audit import views as audit_views

from . import views

app_name = "registry"
urlpatterns = [
    path("", views.prompt_list, name="prompt-list"),
    path("prompts/<slug:slug>/", views.prompt_detail, name="prompt-detail"),
    path("prompts/<slug:slug>/versions/new/", views.version_new, name="version-new"),
    path("prompts/<slug:slug>/versions/<int:number>/", views.version_detail, name="version-detail"),
    path("prompts/<slug:slug>/diff/", views.version_diff, name="version-diff"),
    path("prompts/<slug:slug>/history/", audit_views.prompt_history, name="prompt-history"),
]
