"""Browser routes of the approval flow, under /approvals/."""

from django.urls import path

from . import views

app_name = "approvals"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("pending-count/", views.pending_count, name="pending-count"),
    path("requests/", views.request_list, name="request-list"),
    path("requests/<int:pk>/", views.request_detail, name="request-detail"),
    path("requests/<int:pk>/<slug:action>", views.request_action, name="request-action"),
    path("new/<slug:slug>/<int:number>/", views.request_new, name="request-new"),
    path("rollback/<slug:slug>/", views.rollback, name="rollback"),
    path("break-glass/<slug:slug>/", views.break_glass, name="break-glass"),
    path("tier-change/<slug:slug>/", views.tier_change, name="tier-change"),
    path("policies/", views.policies, name="policies"),
]
