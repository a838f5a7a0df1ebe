"""Browser routes of the audit trail (mounted at /audit/). A prompt's History tab is routed with the
prompt's own pages, in ``registry.urls``."""

from django.urls import path

from . import views

app_name = "audit"
urlpatterns = [
    path("", views.event_log, name="log"),
    path("export/", views.export, name="export"),
    path("verify/", views.verify_now, name="verify"),
]
