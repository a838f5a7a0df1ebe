"""Browser routes of the registry, plus the sections still to come (evals, approvals, audit)."""
from django.urls import path

from . import views

app_name = "registry"
urlpatterns = [
    path("", views.prompt_list, name="prompt-list"),
    path("prompts/<slug:slug>/", views.prompt_detail, name="prompt-detail"),
    path("prompts/<slug:slug>/versions/new/", views.version_new, name="version-new"),
    path("prompts/<slug:slug>/versions/<int:number>/", views.version_detail, name="version-detail"),
    path("prompts/<slug:slug>/diff/", views.version_diff, name="version-diff"),
    path("evals/", views.coming_soon, {"section": "evals"}, name="evals"),
    path("approvals/", views.coming_soon, {"section": "approvals"}, name="approvals"),
    path("audit/", views.coming_soon, {"section": "audit"}, name="audit"),
]
