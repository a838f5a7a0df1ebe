"""/api/v1/ routes of the registry."""
from django.urls import path
from rest_framework.routers import SimpleRouter

from . import token_views, views

router = SimpleRouter()
router.register("teams", views.TeamViewSet, basename="team")
router.register("llm-models", views.LLMModelViewSet, basename="llm-model")
router.register("prompts", views.PromptViewSet, basename="prompt")
router.register("tokens", token_views.TokenViewSet, basename="token")

app_name = "registry-api"
urlpatterns = [
    path("prompts/<slug:slug>/versions/", views.VersionListView.as_view(), name="version-list"),
    path("prompts/<slug:slug>/versions/<int:number>/", views.VersionDetailView.as_view(), name="version-detail"),
    path("prompts/<slug:slug>/versions/<int:number>/diff/", views.VersionDiffView.as_view(), name="version-diff"),
    path("prompts/<slug:slug>/versions/<int:number>/render", views.RenderView.as_view(), name="version-render"),
    path("prompts/<slug:slug>/resolve", views.ResolveView.as_view(), name="resolve"),
    path("prompts/<slug:slug>/kill-switch", views.KillSwitchView.as_view(), name="kill-switch"),
    *router.urls,
]
