"""Browser routes of evals (mounted at /evals/). The Run button's form posts here from a version
page, which is routed with the prompt's other pages in ``registry.urls``."""

from django.urls import path

from . import views

app_name = "evals"
urlpatterns = [
    path("", views.run_list, name="run-list"),
    path("runs/<int:run_id>/", views.run_detail, name="run-detail"),
    path("runs/<int:run_id>/progress/", views.run_progress, name="run-progress"),
    path("runs/<int:run_id>/cancel/", views.run_cancel, name="run-cancel"),
    path("runs/<int:run_id>/compare/", views.run_compare, name="run-compare"),
    path("prompts/<slug:slug>/versions/<int:number>/run/", views.run_start, name="run-start"),
    path("suites/", views.suite_list, name="suite-list"),
    path("suites/new/", views.suite_new, name="suite-new"),
    path("suites/<slug:slug>/", views.suite_detail, name="suite-detail"),
    path("suites/<slug:slug>/cases/upload/", views.suite_upload, name="suite-upload"),
    path("notices/<int:notice_id>/acknowledge/", views.notice_acknowledge, name="notice-acknowledge"),
]
