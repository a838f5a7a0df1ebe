"""Browser routes of the registry (filled in by the browser pages)."""
from django.urls import path

from . import views

app_name = "registry"
urlpatterns = [
    path("", views.prompt_list, name="prompt-list"),
]
