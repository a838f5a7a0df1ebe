"""/sso/: start a sign-in at the IdP, and the callback to register there (/sso/callback/).
The names are mozilla-django-oidc's own, which its views and middleware reverse."""

from django.urls import path

from . import views

urlpatterns = [
    path("login/", views.SignIn.as_view(), name="oidc_authentication_init"),
    path("callback/", views.Callback.as_view(), name="oidc_authentication_callback"),
]
