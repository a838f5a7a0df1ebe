"""Evals API views: parse, call a service or selector, shape the answer."""

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, parsers, serializers, status
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.response import Response

from core.auth import actor_from
from core.errors import ValidationFailed
from core.serializers import validated_data
from registry import selectors as registry_selectors
from registry.api.parsers import JSONParser, StorableParserMixin
from registry.api.serializers import ErrorSerializer
from registry.api.views import ERRORS, PromptScopedView
from registry.models import Team
from registry.services.deployments import get_environment

from .. import case_files, drift, gates, selectors, services
from ..compare import compare_runs
from ..models import DriftNotice
from ..selectors import get_run, visible_runs
from .serializers import (
    CaseSerializer,
    GateResultSerializer,
    GateSerializer,
    ResultSerializer,
    RunRequestSerializer,
    RunSerializer,
    SuiteSerializer,
)


class _CaseFileReader(parsers.BaseParser):
    reader = None

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return type(self).reader(stream.read().decode("utf-8-sig"))[0]
        except (case_files.CaseFileError, UnicodeDecodeError) as exc:
            raise exceptions.ParseError(str(exc)) from exc


class _CaseFileParser(StorableParserMixin, _CaseFileReader):
    pass


class JSONLinesParser(_CaseFileParser):
    """One case per line (``application/x-ndjson``); blank lines are skipped."""

    media_type = "application/x-ndjson"
    reader = staticmethod(case_files.read_jsonl)


class CSVParser(_CaseFileParser):
    """Cases as CSV (``text/csv``): description, vars, expected, assertions, tags (JSON columns)."""

    media_type = "text/csv"
    reader = staticmethod(case_files.read_csv)


class SuiteListView(ListAPIView):
    serializer_class = SuiteSerializer

    def get_queryset(self):
        qs = selectors.visible_suites(actor_from(self.request))
        if self.request.query_params.get("team"):
            qs = qs.filter(team__slug=self.request.query_params["team"])
        return qs

    @extend_schema(
        summary="Suites you can see (your teams' and the shared ones)", parameters=[OpenApiParameter("team", str)]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(summary="Create a suite", request=SuiteSerializer, responses={201: SuiteSerializer, **ERRORS})
    def post(self, request):
        data = validated_data(SuiteSerializer, request)
        team_slug = (data.get("team") or {}).get("slug")
        team = None
        if team_slug:
            team = Team.objects.filter(slug=team_slug).first()
            if team is None:
                raise ValidationFailed(
                    f"no team '{team_slug}'", code="unknown_team", field_errors={"team": ["unknown team"]}
                )
        suite = services.create_suite(
            actor=actor_from(request),
            slug=data["slug"],
            name=data["name"],
            team=team,
            description=data.get("description", ""),
        )
        suite.case_count = 0
        return Response(SuiteSerializer(suite).data, status=status.HTTP_201_CREATED)


class SuiteDetailView(GenericAPIView):
    serializer_class = SuiteSerializer

    @extend_schema(summary="One suite", responses={200: SuiteSerializer, **ERRORS})
    def get(self, request, slug):
        suite = selectors.get_visible_suite(actor=actor_from(request), slug=slug)
        suite.case_count = suite.cases.count()
        return Response(SuiteSerializer(suite).data)


class CaseListView(GenericAPIView):
    serializer_class = CaseSerializer
    parser_classes = [JSONParser, JSONLinesParser, CSVParser]

    @extend_schema(summary="A suite's cases", responses={200: CaseSerializer(many=True)})
    def get(self, request, slug):
        suite = selectors.get_visible_suite(actor=actor_from(request), slug=slug)
        page = self.paginate_queryset(suite.cases.order_by("position"))
        return self.get_paginated_response(CaseSerializer(page, many=True).data)

    @extend_schema(
        summary="Add cases: a JSON list, JSONL (application/x-ndjson, one case a line) or CSV (text/csv)",
        parameters=[OpenApiParameter("replace", bool, description="Replace every case (only if no run used them)")],
        request={"application/json": CaseSerializer(many=True), "application/x-ndjson": CaseSerializer},
        responses={201: CaseSerializer(many=True), **ERRORS},
    )
    def post(self, request, slug):
        actor = actor_from(request)
        suite = selectors.get_visible_suite(actor=actor, slug=slug)
        cases = request.data
        if isinstance(cases, dict):
            cases = [cases]
        made = services.add_cases(
            actor=actor, suite=suite, cases=cases, replace=request.query_params.get("replace") in ("1", "true")
        )
        return Response(CaseSerializer(made, many=True).data, status=status.HTTP_201_CREATED)


class CaseExportView(GenericAPIView):
    serializer_class = CaseSerializer

    @extend_schema(
        summary="Download a suite's cases as JSONL or CSV",
        parameters=[OpenApiParameter("format", str, enum=["jsonl", "csv"])],
        responses={200: OpenApiResponse(description="The cases")},
    )
    def get(self, request, slug):
        suite = selectors.get_visible_suite(actor=actor_from(request), slug=slug)
        fmt = request.query_params.get("format", "jsonl")
        cases = suite.cases.order_by("position")
        if fmt == "csv":
            body, content_type = case_files.write_csv(cases), "text/csv; charset=utf-8"
        elif fmt == "jsonl":
            body, content_type = case_files.write_jsonl(cases), "application/x-ndjson"
        else:
            raise ValidationFailed(f"unknown format '{fmt}'", field_errors={"format": ["jsonl or csv"]})
        response = HttpResponse(body, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{suite.slug}.{fmt}"'
        return response

    def perform_content_negotiation(self, request, force=False):
        renderers = self.get_renderers()
        return renderers[0], renderers[0].media_type


class RunListView(ListAPIView):
    serializer_class = RunSerializer

    def get_queryset(self):
        qs = visible_runs(actor_from(self.request))
        for field, lookup in (("prompt", "prompt__slug"), ("suite", "suite__slug"), ("status", "status")):
            if self.request.query_params.get(field):
                qs = qs.filter(**{lookup: self.request.query_params[field]})
        return selectors.with_results_done(qs).order_by("-created_at", "-id")  # no count per run for its progress

    @extend_schema(
        summary="Eval runs, newest first",
        parameters=[OpenApiParameter("prompt", str), OpenApiParameter("suite", str), OpenApiParameter("status", str)],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Start a run (202: queued; poll it for progress). 403 `budget_exceeded` when the team spent "
        "its month's eval budget; at 80% or more the header `X-Promptledger-Budget` says so",
        request=RunRequestSerializer,
        responses={202: RunSerializer, **ERRORS},
    )
    def post(self, request):
        actor = actor_from(request)
        data = validated_data(RunRequestSerializer, request)
        prompt = registry_selectors.get_visible_prompt(actor=actor, slug=data["prompt"])
        version = registry_selectors.get_version(prompt=prompt, number=data["version"])
        suite = selectors.get_visible_suite(actor=actor, slug=data["suite"])
        run = services.start_run(
            actor=actor, prompt=prompt, version=version, suite=suite, trigger=data["trigger"], model=data.get("model")
        )
        response = Response(RunSerializer(get_run(actor, run.pk)).data, status=status.HTTP_202_ACCEPTED)
        if run.budget.state in ("warning", "overridden"):  # 80% or more of the month's budget spent
            budget = run.budget
            response["X-Promptledger-Budget"] = (
                f"{budget.state}; team={budget.team.slug}; month={budget.month:%Y-%m}; "
                f"spent_usd={budget.spent:.2f}; budget_usd={budget.budget}; percent={budget.percent}"
            )
        return response


class RunDetailView(GenericAPIView):
    serializer_class = RunSerializer

    @extend_schema(
        summary="A run: status, progress, pass rate and aggregates", responses={200: RunSerializer, **ERRORS}
    )
    def get(self, request, run_id):
        return Response(RunSerializer(get_run(actor_from(request), run_id)).data)


class RunResultsView(GenericAPIView):
    serializer_class = ResultSerializer

    @extend_schema(
        summary="A run's results, in case order",
        parameters=[OpenApiParameter("passed", bool, description="`false` for failures only")],
    )
    def get(self, request, run_id):
        run = get_run(actor_from(request), run_id)
        qs = run.results.order_by("position")
        passed = request.query_params.get("passed")
        if passed in ("true", "false"):
            qs = qs.filter(passed=passed == "true")
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(ResultSerializer(page, many=True).data)


class RunCancelView(GenericAPIView):
    serializer_class = RunSerializer

    @extend_schema(
        summary="Cancel a run (workers stop before their next provider call)",
        request=None,
        responses={200: RunSerializer, 409: ErrorSerializer, **ERRORS},
    )
    def post(self, request, run_id):
        actor = actor_from(request)
        services.cancel_run(actor=actor, run=get_run(actor, run_id))
        return Response(RunSerializer(get_run(actor, run_id)).data)


class RunCompareView(GenericAPIView):
    serializer_class = RunSerializer

    @extend_schema(
        summary="Compare with another run of the same suite",
        parameters=[OpenApiParameter("against", int, required=True)],
        description=(
            "Case by case against another run of the same suite. `regressions`, `improvements`, "
            "`still_failing`: `[{case, position}]`. `cases`: every case in both runs with `verdict` "
            "(regression, improvement, still_failing, still_passing), `passed`, `against_passed`, "
            "`output_changed` and `deltas` (`cost_usd`, `latency_ms`, `input_tokens`, `output_tokens`: "
            "this run minus the other). `counts`: cases, changed_output, each verdict, only_in_run, "
            "only_in_against. `totals`: each measure summed over the compared cases for `run`, "
            "`against` and their `delta`."
        ),
        responses={
            200: OpenApiResponse(description="pass_rate_delta, regressions, improvements, cases, counts, totals"),
            **ERRORS,
        },
    )
    def get(self, request, run_id):
        actor = actor_from(request)
        against = request.query_params.get("against", "")
        if not against.isdigit():
            raise ValidationFailed("against is required", field_errors={"against": ["another run's id"]})
        return Response(compare_runs(get_run(actor, run_id), get_run(actor, int(against))))


class GateView(PromptScopedView):
    serializer_class = GateSerializer

    @extend_schema(summary="A prompt's gate", responses={200: GateSerializer, **ERRORS})
    def get(self, request, slug):
        _, prompt = self.prompt(request, slug)
        return Response(gates.gate_config(prompt))

    @extend_schema(
        summary="Set a prompt's gate (team owners)", request=GateSerializer, responses={200: GateSerializer, **ERRORS}
    )
    def put(self, request, slug):
        actor, prompt = self.prompt(request, slug)
        data = validated_data(GateSerializer, request)
        gates.set_gate(
            actor=actor,
            prompt=prompt,
            suites=[dict(s) for s in data["suites"]],
            max_regression=data.get("max_regression"),
        )
        return Response(gates.gate_config(prompt))


class VersionGateView(PromptScopedView):
    serializer_class = GateResultSerializer

    @extend_schema(
        summary="Does this version pass its gate for an environment?",
        parameters=[OpenApiParameter("environment", str, required=True)],
        responses={200: GateResultSerializer, **ERRORS},
    )
    def get(self, request, slug, number):
        actor, prompt = self.prompt(request, slug)
        version = registry_selectors.get_version(prompt=prompt, number=number)
        environment = request.query_params.get("environment")
        if not environment:
            raise ValidationFailed("environment is required", field_errors={"environment": ["e.g. production"]})
        return Response(
            gates.evaluate_gate(actor=actor, prompt=prompt, version=version, environment=get_environment(environment))
        )


class DriftNoticeSerializer(serializers.ModelSerializer):
    prompt = serializers.CharField(source="prompt.slug")
    suite = serializers.CharField(source="suite.slug")
    run = serializers.IntegerField(source="run_id")
    version = serializers.IntegerField(source="run.version.number")
    previous_run = serializers.IntegerField(source="previous_run_id", allow_null=True)
    previous_version = serializers.IntegerField(source="previous_run.version.number", allow_null=True, default=None)
    acknowledged_by = serializers.CharField(source="acknowledged_by.username", allow_null=True, default=None)

    class Meta:
        model = DriftNotice
        fields = [
            "id",
            "prompt",
            "environment",
            "suite",
            "run",
            "version",
            "previous_run",
            "previous_version",
            "pass_rate",
            "previous_pass_rate",
            "threshold",
            "reason",
            "created_at",
            "acknowledged_at",
            "acknowledged_by",
        ]


class PromptNoticeListView(PromptScopedView):
    serializer_class = DriftNoticeSerializer

    @extend_schema(
        summary="A prompt's open drift notices (not yet acknowledged), newest first",
        responses={200: DriftNoticeSerializer(many=True)},
    )
    def get(self, request, slug):
        _, prompt = self.prompt(request, slug)
        page = self.paginate_queryset(drift.open_notices(prompt=prompt))
        return self.get_paginated_response(DriftNoticeSerializer(page, many=True).data)


class NoticeAcknowledgeView(GenericAPIView):
    serializer_class = DriftNoticeSerializer

    @extend_schema(
        summary="Acknowledge a drift notice (the prompt's team approvers and owners)",
        request=None,
        responses={200: DriftNoticeSerializer, 409: ErrorSerializer, **ERRORS},
    )
    def post(self, request, notice_id):
        actor = actor_from(request)
        notice = drift.acknowledge_notice(
            actor=actor, notice=drift.get_visible_notice(actor=actor, notice_id=notice_id)
        )
        return Response(DriftNoticeSerializer(drift.get_visible_notice(actor=actor, notice_id=notice.pk)).data)
