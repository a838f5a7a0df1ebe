"""Shapes of the approval flow's API: request bodies in, requests, decisions and checklists out."""

from rest_framework import serializers

from ..models import Approval, DeployRequest, TierPolicy


class DeployRequestCreateSerializer(serializers.Serializer):
    prompt = serializers.CharField(help_text="The prompt's slug.")
    kind = serializers.ChoiceField(
        choices=[c[0] for c in DeployRequest.KIND_CHOICES], default=DeployRequest.DEPLOY,
        help_text="`deploy` (a version, full or canary), `rollback` (back to the version live before the current "
        "one; no version needed) or `tier_change` (lower the prompt's criticality to `tier`).",
    )
    version = serializers.IntegerField(required=False, allow_null=True, help_text="Version number (deploy).")
    environment = serializers.CharField(required=False, allow_null=True, help_text="Environment slug.")
    rationale = serializers.CharField(help_text="Why: shown to approvers and kept in the audit trail.")
    canary_percent = serializers.IntegerField(
        required=False, allow_null=True, help_text="1..99 to run the version as a canary beside the live one."
    )
    tier = serializers.IntegerField(required=False, allow_null=True, help_text="The new tier (tier_change).")


class CommentSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class BreakGlassSerializer(serializers.Serializer):
    environment = serializers.CharField()
    version = serializers.IntegerField(help_text="A version that was live in this environment before.")
    reason = serializers.CharField(help_text="What is wrong and why it cannot wait for approvals.")


class ApprovalSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username")

    class Meta:
        model = Approval
        fields = [
            "id", "user", "decision", "comment", "content_hash", "environment", "model_key", "tier",
            "policy_version", "auth_method", "authenticated_at", "created_at", "withdrawn_at",
        ]


class RequirementSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    met = serializers.BooleanField()
    detail = serializers.CharField()
    code = serializers.CharField(help_text="The error code a deploy refused on this requirement carries.")


class DeployRequestSerializer(serializers.ModelSerializer):
    prompt = serializers.CharField(source="prompt.slug")
    version = serializers.IntegerField(source="version.number", allow_null=True, default=None)
    environment = serializers.CharField(source="environment.slug", allow_null=True, default=None)
    base_version = serializers.IntegerField(source="base_version.number", allow_null=True, default=None)
    model = serializers.CharField(source="llm_model.model_id", allow_null=True, default=None)
    requested_by = serializers.CharField(source="requested_by.username")
    deployed_by = serializers.CharField(source="deployed_by.username", allow_null=True, default=None)
    title = serializers.CharField(read_only=True)

    class Meta:
        model = DeployRequest
        fields = [
            "id", "title", "prompt", "kind", "version", "environment", "canary_percent", "target_tier", "tier",
            "base_version", "content_hash", "model", "policy_snapshot", "rationale", "status", "requested_by",
            "created_at", "decided_at", "deployed_at", "deployed_by", "superseded_by", "break_glass",
            "review_status",
        ]


class DeployRequestDetailSerializer(DeployRequestSerializer):
    approvals = ApprovalSerializer(many=True, read_only=True, source="approval_list")
    checklist = RequirementSerializer(many=True, read_only=True)
    deployable = serializers.BooleanField(read_only=True, help_text="Every requirement is met now.")

    class Meta(DeployRequestSerializer.Meta):
        fields = [*DeployRequestSerializer.Meta.fields, "approvals", "checklist", "deployable"]


class TierPolicySerializer(serializers.ModelSerializer):
    updated_by = serializers.CharField(source="updated_by.username", allow_null=True, default=None, read_only=True)

    class Meta:
        model = TierPolicy
        fields = [
            "tier", "version", "required_approvals", "named_approvers_only", "requires_gate",
            "allowed_model_statuses", "reauth_for_approval", "updated_at", "updated_by",
        ]
        read_only_fields = ["tier", "version", "updated_at", "updated_by"]


class TierPolicyUpdateSerializer(serializers.Serializer):
    required_approvals = serializers.IntegerField(required=False)
    named_approvers_only = serializers.BooleanField(required=False)
    requires_gate = serializers.BooleanField(required=False)
    allowed_model_statuses = serializers.ListField(child=serializers.CharField(), required=False)
    reauth_for_approval = serializers.BooleanField(required=False)
    reason = serializers.CharField(
        required=False, allow_blank=True, help_text="Why the policy changes (required); kept in the audit event."
    )


class ApproverGroupSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    members = serializers.ListField(child=serializers.CharField(), help_text="Usernames (team approvers/owners).")
