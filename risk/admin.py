"""Read-only admin rows of the risk workspace: every change goes through risk.services (audited)."""

from django.contrib import admin

from .models import ModelProfile, ModelReview, ReviewDueNotice, RiskPolicy


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ModelReview)
class ModelReviewAdmin(ReadOnly):
    list_display = ("llm_model", "decision", "reviewer_name", "auth_method", "created_at", "next_review_due")
    list_filter = ("decision",)


admin.site.register(ModelProfile, ReadOnly)
admin.site.register(RiskPolicy, ReadOnly)
admin.site.register(ReviewDueNotice, ReadOnly)
