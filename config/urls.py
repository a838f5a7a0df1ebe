"""Top-level routes: the REST API under /api/v1/, its schema and docs, the browser, health, metrics."""

from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from . import errors, health, metrics

urlpatterns = [
    path("api/v1/", include("registry.api.urls")),
    path("api/v1/", include("audit.api.urls")),
    path("api/v1/", include("evals.api.urls")),
    path("api/v1/", include("webhooks.api.urls")),
    path("api/v1/", include("approvals.api.urls")),
    path("api/v1/", include("risk.api.urls")),  # a model's quarterly reviews
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI sets inline styles as it renders; its scripts are still this server's files only.
    path("api/docs/", csp_update({"style-src": ["'unsafe-inline'"]})(SpectacularSwaggerSplitView.as_view(
        url_name="schema")), name="api-docs"),
    # Redoc styles its element with <style> tags it writes, and builds its search index in a worker
    # started from a blob: URL it makes of its own bundled code; nothing comes from another host.
    path("api/redoc/", csp_update({"style-src": ["'unsafe-inline'"], "worker-src": ["blob:"]})(
        SpectacularRedocView.as_view(url_name="schema", template_name="api/redoc.html")), name="api-redoc"),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("sso/", include("sso.urls")),  # OpenID Connect sign-in (404 while it is not configured)
    path("admin/", admin.site.urls),
    path("audit/", include("audit.urls")),
    path("evals/", include("evals.urls")),
    path("costs/", include("evals.urls_costs")),  # eval spend and team budgets
    path("approvals/", include("approvals.urls")),
    path("settings/webhooks/", include("webhooks.urls")),
    path("models/", include("risk.urls")),  # the model risk register
    path("compliance/", include("risk.urls_compliance")),  # the access review
    path("", include("registry.urls")),
]

handler400 = errors.bad_request
handler403 = errors.permission_denied
handler404 = errors.page_not_found
handler500 = errors.server_error
