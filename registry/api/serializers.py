"""Request and response shapes of the registry API. They check shape only; services decide."""

from rest_framework import serializers

from core.serializers import ErrorSerializer  # noqa: F401 - the API's error shape, shared

from .. import rendering
from ..models import APIToken, Deployment, LLMModel, Membership, Prompt, PromptVersion, Team
from ..services.tokens import token_state


class TeamSerializer(serializers.ModelSerializer):
    slug = serializers.CharField(max_length=200, help_text="Lowercase letters, digits, hyphens.")

    class Meta:
        model = Team
        fields = ["slug", "name", "created_at"]
        read_only_fields = ["created_at"]


class MemberSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Membership.ROLE_CHOICES)

    def to_representation(self, membership):
        return {"username": membership.user.username, "role": membership.role, "since": membership.created_at}


class LLMModelSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username")

    class Meta:
        model = LLMModel
        fields = [
            "id",
            "provider",
            "model_id",
            "owner",
            "status",
            "failure_modes",
            "last_reviewed_at",
            "next_review_due",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {"status": {"required": False}, "failure_modes": {"required": False}}
        validators = []


class LLMModelUpdateSerializer(serializers.Serializer):
    owner = serializers.CharField(required=False)
    status = serializers.ChoiceField(choices=LLMModel.STATUS_CHOICES, required=False)
    failure_modes = serializers.CharField(required=False, allow_blank=True)
    last_reviewed_at = serializers.DateField(required=False, allow_null=True)
    next_review_due = serializers.DateField(required=False, allow_null=True)


class DeploymentSerializer(serializers.ModelSerializer):
    environment = serializers.CharField(source="environment.slug")
    version = serializers.IntegerField(source="version.number", allow_null=True, default=None)
    canary_version = serializers.IntegerField(source="canary_version.number", allow_null=True, default=None)
    updated_by = serializers.CharField(source="updated_by.username", allow_null=True, default=None)

    class Meta:
        model = Deployment
        fields = [
            "environment",
            "version",
            "canary_version",
            "canary_percent",
            "disabled",
            "disabled_reason",
            "updated_at",
            "updated_by",
        ]


class PromptSerializer(serializers.ModelSerializer):
    team = serializers.CharField(source="team.slug")
    owner = serializers.CharField(source="owner.username")
    latest_version = serializers.IntegerField(read_only=True, allow_null=True, default=None)

    class Meta:
        model = Prompt
        fields = [
            "slug",
            "name",
            "description",
            "team",
            "tier",
            "owner",
            "tags",
            "data_categories",
            "latest_version",
            "created_at",
            "updated_at",
        ]


class PromptDetailSerializer(PromptSerializer):
    deployments = DeploymentSerializer(many=True, read_only=True, source="deployments_list")
    approvers = serializers.ListField(
        child=serializers.CharField(), read_only=True, source="named.approvers",
        help_text="Usernames of the named approvers.",
    )
    approver_groups = serializers.ListField(
        child=serializers.CharField(), read_only=True, source="named.approver_groups",
        help_text="Slugs of the team's approver groups named on the prompt.",
    )

    class Meta(PromptSerializer.Meta):
        fields = [*PromptSerializer.Meta.fields, "deployments", "approvers", "approver_groups"]


class PromptCreateSerializer(serializers.Serializer):
    slug = serializers.CharField(max_length=200, help_text="Globally unique: lowercase letters, digits, hyphens.")
    name = serializers.CharField(max_length=200)
    team = serializers.CharField(help_text="The owning team's slug.")
    tier = serializers.IntegerField(help_text="0 (most critical) to 3.")
    owner = serializers.CharField(help_text="Username of the named owner; a member of the team.")
    tags = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    data_categories = serializers.ListField(
        child=serializers.CharField(), required=False, default=list, help_text="e.g. pii, phi, financial."
    )
    description = serializers.CharField(required=False, allow_blank=True, default="")


class PromptUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    tier = serializers.IntegerField(
        required=False, help_text="Raising criticality (a lower number) is direct; lowering it needs a tier-change "
        "request approved under the current tier (POST /api/v1/deploy-requests/ with kind tier_change).",
    )
    approvers = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Usernames of the named approvers (owners)."
    )
    approver_groups = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Slugs of the team's approver groups (owners)."
    )
    owner = serializers.CharField(required=False)
    tags = serializers.ListField(child=serializers.CharField(), required=False)
    data_categories = serializers.ListField(child=serializers.CharField(), required=False)


class MessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=rendering.ROLES)
    content = serializers.CharField(trim_whitespace=False, help_text="A Jinja2 template (sandboxed).")


class VariableSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=rendering.TYPES, default="string")
    required = serializers.BooleanField(required=False)
    default = serializers.JSONField(required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class ModelConfigSerializer(serializers.Serializer):
    provider = serializers.ChoiceField(choices=LLMModel.PROVIDER_CHOICES)
    name = serializers.CharField(help_text="A registered model_id of this provider.")
    params = serializers.DictField(required=False, default=dict)
    response_schema = serializers.JSONField(required=False, allow_null=True, default=None)


class VersionCreateSerializer(serializers.Serializer):
    messages = MessageSerializer(many=True, allow_empty=False)
    variables = serializers.DictField(child=VariableSerializer(), required=False, default=dict)
    model = ModelConfigSerializer()
    message = serializers.CharField(required=False, allow_blank=True, default="", help_text="Why this change.")


class VersionSerializer(serializers.ModelSerializer):
    prompt = serializers.CharField(source="prompt.slug")
    model = serializers.JSONField(source="model_config")
    message = serializers.CharField(source="change_note")
    author = serializers.CharField(source="author.username")
    parent = serializers.IntegerField(source="parent.number", allow_null=True, default=None)
    variables = serializers.DictField(child=VariableSerializer())
    messages = MessageSerializer(many=True)

    class Meta:
        model = PromptVersion
        fields = [
            "prompt",
            "number",
            "content_hash",
            "messages",
            "variables",
            "model",
            "message",
            "author",
            "parent",
            "created_at",
        ]


class RenderRequestSerializer(serializers.Serializer):
    variables = serializers.DictField(required=False, default=dict)


class RenderResponseSerializer(serializers.Serializer):
    prompt = serializers.CharField()
    version = serializers.IntegerField()
    content_hash = serializers.CharField()
    messages = MessageSerializer(many=True)
    model = ModelConfigSerializer()


class MessageDiffSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["added", "removed", "changed", "unchanged"])
    role_before = serializers.CharField(allow_null=True)
    role_after = serializers.CharField(allow_null=True)
    diff = serializers.CharField()


class DiffSerializer(serializers.Serializer):
    prompt = serializers.CharField()
    from_version = serializers.IntegerField()
    to_version = serializers.IntegerField()
    unified = serializers.CharField(help_text="A unified diff of the whole version as text.")
    messages = MessageDiffSerializer(many=True)


class ResolveSerializer(serializers.Serializer):
    slug = serializers.CharField()
    environment = serializers.CharField()
    version = serializers.IntegerField()
    content_hash = serializers.CharField()
    canary = serializers.BooleanField(help_text="True when the unit was bucketed onto the canary version.")
    messages = MessageSerializer(many=True)
    variables = serializers.DictField(child=VariableSerializer())
    model = ModelConfigSerializer()


class KillSwitchSerializer(serializers.Serializer):
    environment = serializers.CharField()
    disabled = serializers.BooleanField()
    reason = serializers.CharField(allow_blank=True)


class TokenSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", read_only=True, help_text="Whose token it is.")
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=APIToken.SCOPES), read_only=True)
    state = serializers.SerializerMethodField(help_text="`active`, `expired` or `revoked`.")
    last_used_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="Recorded at most every few minutes; null: never used."
    )

    class Meta:
        model = APIToken
        fields = [
            "id", "name", "prefix", "user", "scopes", "state", "created_at", "last_used_at", "expires_at", "revoked_at"
        ]

    def get_state(self, token) -> str:
        return token_state(token)


class TokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, default="", help_text="A label, e.g. `ci`.")
    scopes = serializers.ListField(
        child=serializers.CharField(),
        help_text=f"Any of {', '.join(APIToken.SCOPES)}, at most what your roles allow (else 400 "
        "`scope_not_allowed`).",
    )
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None,
        help_text="Default: 90 days from now; at most PROMPTLEDGER_TOKEN_MAX_DAYS (365 by default) ahead, "
        "else 400 `invalid_expiry`.",
    )


class TokenCreatedSerializer(TokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The secret, shown this once: only its hash is kept.")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]
