"""The compliance workspace's pages, under /compliance/: the quarterly access review."""

from django.urls import path

from . import views_access_review

app_name = "compliance"

urlpatterns = [
    path("access-review/", views_access_review.access_review_page, name="access-review"),
    path("access-review/export/", views_access_review.access_review_export, name="access-review-export"),
]
