"""The register's pages, under /models/."""

from django.urls import path

from . import views, views_inventory

app_name = "risk"

urlpatterns = [
    path("", views.model_list, name="model-list"),
    path("due-count/", views.due_count, name="due-count"),
    path("policy/", views.risk_policy, name="policy"),
    path("inventory/", views_inventory.inventory_page, name="inventory"),
    path("inventory/export/", views_inventory.inventory_export, name="inventory-export"),
    path("<int:model_id>/", views.model_detail, name="model-detail"),
    path("<int:model_id>/edit/", views.model_edit, name="model-edit"),
    path("<int:model_id>/review/", views.model_review, name="model-review"),
    path("<int:model_id>/affected/", views.affected, name="affected"),
]
