from django.urls import path

from . import views

app_name = "audit-api"
urlpatterns = [
    path("audit-events/", views.AuditEventListView.as_view(), name="event-list"),
    path("audit-events/export", views.AuditExportView.as_view(), name="export"),
]
