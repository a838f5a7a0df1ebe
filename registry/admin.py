"""Read-mostly admin: inspection, never a back door around the services."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from .models import APIToken, Deployment, Environment, LLMModel, Membership, Prompt, PromptVersion, SiteRole, Team


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Team)
class TeamAdmin(ReadOnlyAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    list_display = ["team", "user", "role"]
    list_filter = ["role", "team"]


@admin.register(SiteRole)
class SiteRoleAdmin(ReadOnlyAdmin):
    list_display = ["user", "role"]


@admin.register(LLMModel)
class LLMModelAdmin(ReadOnlyAdmin):
    list_display = ["provider", "model_id", "status", "owner", "next_review_due"]
    list_filter = ["provider", "status"]


@admin.register(Prompt)
class PromptAdmin(ReadOnlyAdmin):
    list_display = ["slug", "name", "team", "tier", "owner"]
    list_filter = ["tier", "team"]
    search_fields = ["slug", "name"]


@admin.register(PromptVersion)
class PromptVersionAdmin(ReadOnlyAdmin):
    list_display = ["prompt", "number", "content_hash", "author", "created_at"]
    search_fields = ["prompt__slug", "content_hash"]


@admin.register(Environment)
class EnvironmentAdmin(ReadOnlyAdmin):
    list_display = ["slug", "name", "position"]


@admin.register(Deployment)
class DeploymentAdmin(ReadOnlyAdmin):
    list_display = ["prompt", "environment", "version", "canary_version", "canary_percent", "disabled"]


@admin.register(APIToken)
class APITokenAdmin(ReadOnlyAdmin):
    list_display = ["prefix", "user", "name", "created_at", "last_used_at", "revoked_at"]
    exclude = ["key_hash"]


# Django's own User and Group admin would change superuser, staff and active flags and passwords
# with no audit event; accounts change only through registry.services.users (``manage.py user``).
# Groups are not used for access here (roles are Membership and SiteRole rows).
admin.site.unregister(get_user_model())
admin.site.unregister(Group)


@admin.register(get_user_model())
class UserAdmin(ReadOnlyAdmin):
    list_display = ("username", "email", "is_active", "is_staff", "is_superuser", "last_login", "date_joined")
    list_filter = ("is_active", "is_staff", "is_superuser")
    search_fields = ("username", "email")
    exclude = ("password", "groups", "user_permissions")
