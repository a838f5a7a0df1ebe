"""Shapes of the model reviews API and the access review's."""

from rest_framework import serializers

from ..models import AccessReviewSignOff, ModelReview


class ReviewSerializer(serializers.ModelSerializer):
    model = serializers.SerializerMethodField()

    class Meta:
        model = ModelReview
        fields = [
            "id", "model", "reviewer_name", "findings", "evidence_links", "decision", "allowed_tiers",
            "status_before", "status_after", "previous_due", "next_review_due", "affected_prompts",
            "auth_method", "authenticated_at", "created_at",
        ]

    def get_model(self, review) -> str:
        return f"{review.llm_model.provider}:{review.llm_model.model_id}"


class ReviewCreateSerializer(serializers.Serializer):
    findings = serializers.CharField(max_length=20000)
    decision = serializers.ChoiceField(choices=ModelReview.DECISION_CHOICES)
    next_review_due = serializers.DateField(required=False, allow_null=True, help_text="default: 91 days on")
    evidence_links = serializers.ListField(child=serializers.CharField(max_length=500), required=False, max_length=20)
    allowed_tiers = serializers.ListField(child=serializers.IntegerField(), required=False, max_length=4)


class AccessReviewSerializer(serializers.Serializer):
    """The access review as the page shows it, and the sha256 a sign-off would record."""

    fingerprint = serializers.CharField()
    report = serializers.JSONField(help_text="as_of, users (roles, tokens, last use, can_approve), approvers, "
                                             "tier_policies")


class AccessReviewSignOffSerializer(serializers.ModelSerializer):
    class Meta:
        model = AccessReviewSignOff
        fields = ["id", "period", "reviewer_name", "comment", "fingerprint", "user_count", "auth_method",
                  "authenticated_at", "created_at"]
