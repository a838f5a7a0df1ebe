"""Request and response shapes of the evals API (shape only; services decide)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import Case, EvalResult, EvalRun, Suite


class SuiteSerializer(serializers.ModelSerializer):
    team = serializers.CharField(
        source="team.slug",
        allow_null=True,
        required=False,
        default=None,
        help_text="The owning team's slug; omit for a shared site-wide suite (admins).",
    )
    slug = serializers.CharField(max_length=200)
    case_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Suite
        fields = ["slug", "name", "description", "team", "case_count", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]


class CaseSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(read_only=True)

    class Meta:
        model = Case
        fields = ["id", "position", "description", "vars", "expected", "assertions", "tags"]


class RunRequestSerializer(serializers.Serializer):
    prompt = serializers.CharField()
    version = serializers.IntegerField()
    suite = serializers.CharField()
    trigger = serializers.ChoiceField(choices=EvalRun.TRIGGER_CHOICES, default=EvalRun.MANUAL)
    model = serializers.DictField(
        required=False,
        allow_null=True,
        default=None,
        help_text='Run on another registered model: {"provider": ..., "name": ...}',
    )


class ProgressSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    percent = serializers.FloatField()


class RunSerializer(serializers.ModelSerializer):
    prompt = serializers.CharField(source="prompt.slug")
    version = serializers.IntegerField(source="version.number")
    suite = serializers.CharField(source="suite.slug")
    model = serializers.JSONField(source="model_config")
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    progress = serializers.SerializerMethodField()

    class Meta:
        model = EvalRun
        fields = [
            "id",
            "prompt",
            "version",
            "content_hash",
            "suite",
            "model",
            "trigger",
            "status",
            "progress",
            "pass_rate",
            "summary",
            "cancel_requested",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            # A lost worker's cases taken back for another (the run page's "worker lost, resumed").
            "recoveries",
            "resumed_at",
        ]
        read_only_fields = fields

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, run):
        from ..runner import progress

        return progress(run)


class ResultSerializer(serializers.ModelSerializer):
    case = serializers.IntegerField(source="case_id")

    class Meta:
        model = EvalResult
        fields = [
            "case",
            "position",
            "passed",
            "output",
            "verdicts",
            "latency_ms",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "error",
            "attempts",
            "created_at",
        ]


class GateSuiteSerializer(serializers.Serializer):
    suite = serializers.CharField()
    min_pass_rate = serializers.FloatField()


class GateSerializer(serializers.Serializer):
    suites = GateSuiteSerializer(many=True)
    max_regression = serializers.FloatField(allow_null=True, required=False, default=None)


class GateCheckSerializer(serializers.Serializer):
    code = serializers.CharField()
    passed = serializers.BooleanField()
    detail = serializers.CharField()
    suite = serializers.CharField(required=False)
    min_pass_rate = serializers.FloatField(required=False)
    pass_rate = serializers.FloatField(required=False, allow_null=True)
    run = serializers.IntegerField(required=False, allow_null=True)


class GateResultSerializer(serializers.Serializer):
    prompt = serializers.CharField()
    version = serializers.IntegerField()
    content_hash = serializers.CharField()
    environment = serializers.CharField()
    passed = serializers.BooleanField()
    checks = GateCheckSerializer(many=True)
