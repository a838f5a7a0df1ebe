"""GET /api/v1/costs/: eval spend by team, model or prompt and month, as JSON, with each shown
team's budget this month; ``/api/v1/teams/{slug}/budget`` (GET, PUT) and ``.../budget/override``
(POST): a team's budget, through the same services as the cost page. The numbers and the rules
on what may be asked are ``evals.costs``' and ``evals.budgets``'."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from core.auth import actor_from
from core.errors import NotFound
from core.serializers import validated_data
from registry.api.serializers import ErrorSerializer
from registry.api.views import ERRORS

from .. import budgets, costs


class CostRowSerializer(serializers.Serializer):
    team = serializers.CharField(required=False, help_text="group_by=team or prompt")
    prompt = serializers.CharField(required=False, help_text="group_by=prompt")
    provider = serializers.CharField(required=False, help_text="group_by=model")
    model = serializers.CharField(required=False, help_text="group_by=model: the exact model id")
    month = serializers.CharField(help_text="YYYY-MM, in the server's TIME_ZONE")
    cost_usd = serializers.FloatField()
    runs = serializers.IntegerField(help_text="runs with results in the month")
    results = serializers.IntegerField()


class BudgetSerializer(serializers.Serializer):
    team = serializers.CharField(source="team.slug")
    month = serializers.SerializerMethodField()
    budget_usd = serializers.DecimalField(max_digits=12, decimal_places=2, source="budget", allow_null=True)
    spent_usd = serializers.FloatField(source="spent")
    percent = serializers.FloatField(allow_null=True)
    state = serializers.ChoiceField(choices=["none", "ok", "warning", "exceeded", "overridden"])
    override_reason = serializers.SerializerMethodField()

    def get_month(self, status) -> str:
        return status.month.strftime("%Y-%m")

    def get_override_reason(self, status) -> str | None:
        return status.override.reason if status.override else None


class CostReportSerializer(serializers.Serializer):
    group_by = serializers.ChoiceField(choices=list(costs.GROUPS))
    team = serializers.CharField(allow_blank=True)
    since = serializers.CharField()
    until = serializers.CharField()
    total_usd = serializers.FloatField()
    rows = CostRowSerializer(many=True)
    budgets = BudgetSerializer(many=True, help_text="this month, for each shown team that has a budget")


class CostReportView(GenericAPIView):
    serializer_class = CostReportSerializer
    pagination_class = None

    @extend_schema(
        summary="Eval spend by team, model or prompt and month (members: their teams; admin, compliance, risk: all)",
        parameters=[
            OpenApiParameter("group_by", str, enum=list(costs.GROUPS), description="default: team"),
            OpenApiParameter("team", str, description="one team's slug (404 when you cannot see it)"),
            OpenApiParameter("since", str, description="first month, YYYY-MM (default: five months before until)"),
            OpenApiParameter("until", str, description="last month, YYYY-MM (default: this month)"),
        ],
        responses={200: CostReportSerializer, **ERRORS},
    )
    def get(self, request):
        actor = actor_from(request)
        query = costs.cost_query(
            actor, **{name: request.query_params.get(name, "") for name in ("group_by", "team", "since", "until")}
        )
        rows = costs.spend_report(actor, query)
        teams = [query.team] if query.team else costs.visible_teams(actor)
        statuses = [s for s in budgets.statuses(teams) if s.budget is not None]
        body = {
            **query.as_params(),
            "total_usd": round(sum(row["cost_usd"] for row in rows), 6),
            "rows": rows,
            "budgets": BudgetSerializer(statuses, many=True).data,
        }
        return Response(body)


class BudgetRequestSerializer(serializers.Serializer):
    monthly_usd = serializers.CharField(allow_null=True, allow_blank=True,
                                        help_text="US dollars a month, e.g. \"250.00\"; null or empty removes it")


class OverrideRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, help_text="why the team's runs must go on past its budget")


def _team(actor, slug):
    team = costs.visible_teams(actor).filter(slug=slug).first()
    if team is None:
        raise NotFound(f"no team '{slug}' (or you cannot see it)", code="team_not_found")
    return team


def _status(team):
    return BudgetSerializer(budgets.budget_status(team)).data


class TeamBudgetView(GenericAPIView):
    serializer_class = BudgetSerializer
    pagination_class = None

    @extend_schema(summary="A team's eval budget and its spend this month", responses={200: BudgetSerializer, **ERRORS})
    def get(self, request, slug):
        return Response(_status(_team(actor_from(request), slug)))

    @extend_schema(
        summary="Set or remove a team's monthly eval budget (team owners, admins; audited)",
        request=BudgetRequestSerializer, responses={200: BudgetSerializer, **ERRORS},
    )
    def put(self, request, slug):
        actor = actor_from(request)
        team = _team(actor, slug)
        data = validated_data(BudgetRequestSerializer, request)
        budgets.set_budget(actor=actor, team=team, monthly_usd=data.get("monthly_usd"))
        return Response(_status(team))


class BudgetOverrideView(GenericAPIView):
    serializer_class = OverrideRequestSerializer

    @extend_schema(
        summary="Let a team's runs go on past its budget this month (team owners, admins; a person; audited)",
        description="Once the month's spend has reached 80% of the budget: below that the answer is 409 "
                    "`budget_not_reached`; a month already overridden is 409 `budget_overridden`; a team without "
                    "a budget is 400 `no_budget`.",
        request=OverrideRequestSerializer, responses={201: BudgetSerializer, 409: ErrorSerializer, **ERRORS},
    )
    def post(self, request, slug):
        actor = actor_from(request)
        team = _team(actor, slug)
        data = validated_data(OverrideRequestSerializer, request)
        budgets.override_budget(actor=actor, team=team, reason=data["reason"])
        return Response(_status(team), status=status.HTTP_201_CREATED)
