"""What the eval budget check and the cost report cost, on PostgreSQL with many results.

What it does, in one run:

1. resets a dedicated database (``promptledger_bench_costs`` unless ``--database-url``), migrates it
   with production settings and, through the services, makes ``--teams`` teams, each with a prompt,
   a version, a suite of 100 cases and a $100 monthly budget; then loads ``--results`` results
   (100 per run, an equal share in each of the last ``--months`` months, a random cost each) with INSERT ...
   SELECT, and VACUUM ANALYZEs (as autovacuum would soon after);
2. times, median over ``--rounds`` after one warm-up, (a) ``evals.budgets.budget_status`` of one
   team, what every ``start_run`` asks (budget, override, the month's spend), (b) its ceiling: one
   ``SELECT sum(cost_usd)`` over this month's results of every team, with no join and no team
   filter (what summing the results themselves costs at the least), (c) ``evals.costs.spend_report``
   for an admin, by team, six months, read from the roll-up (``RunSpend``), and (d) the same report
   summed from the results, as it was before the roll-up (the GROUP BY the page ran until then);
3. prints ``what | rows in range | ms`` and the check's ratio to its ceiling, the month-spend
   query's plan, and PASS/FAIL against the targets: the budget check in 50 ms or less, the report
   in 300 ms or less (issue 18's bound for every list).

Exit status: 0 PASS, 1 FAIL, 2 could not run. The database is left for inspection.

    python bench/budget_check.py            # 1,000,000 results, 20 teams, 12 months
    python bench/budget_check.py --quick    # 100,000 results
"""

import argparse
import statistics
import time

from harness import CouldNotRun, reset_database, run_main, scratch_run, server_env, setup_django_here

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/promptledger_bench_costs"
TARGET_MS = 50.0
REPORT_TARGET_MS = 300.0
CASES = 100


def _seed(teams, results, months):
    from django.contrib.auth import get_user_model
    from django.db import connection

    from core.actors import Actor
    from evals import budgets
    from evals.models import Case, EvalRun
    from evals.services import create_suite
    from registry import services as registry
    from registry.models import LLMModel, Membership

    system = Actor.for_system("bench")
    author = get_user_model().objects.create_user(username="bench-author")
    body = {"messages": [{"role": "system", "content": "Write to {{ name }}."}],
            "variables": {"name": {"type": "string", "required": True}},
            "model": {"provider": "offline", "name": "offline-echo-1", "params": {}, "response_schema": None}}
    registry.create_llm_model(actor=system, provider=LLMModel.OFFLINE, model_id="offline-echo-1", owner="bench-author",
                              status=LLMModel.APPROVED)
    made = []
    for i in range(teams):
        team = registry.create_team(actor=system, slug=f"team-{i:02}", name=f"Team {i:02}")
        registry.add_member(actor=system, team=team, username="bench-author", role=Membership.OWNER)
        prompt = registry.create_prompt(actor=Actor(user=author), slug=f"prompt-{i:02}", name=f"Prompt {i:02}",
                                        team=team, tier=3, owner="bench-author")
        version, _ = registry.create_version(actor=Actor(user=author), prompt=prompt, messages=body["messages"],
                                             variables=body["variables"], model=body["model"], message="v1")
        suite = create_suite(actor=system, slug=f"suite-{i:02}", name=f"Suite {i:02}", team=team)
        Case.objects.bulk_create([Case(suite=suite, position=p, vars={"name": "Ada"}, assertions=[])
                                  for p in range(1, CASES + 1)])
        budgets.set_budget(actor=system, team=team, monthly_usd=100)
        made.append((team, prompt, version, suite))
    llm = LLMModel.objects.get()
    runs_per_team = max(1, results // CASES // teams)
    with connection.cursor() as cursor:
        for _, prompt, version, suite in made:
            cursor.execute(
                f"INSERT INTO {EvalRun._meta.db_table} (prompt_id, version_id, content_hash, suite_id, llm_model_id, "  # noqa: S608 - our table
                "model_config, trigger, status, cancel_requested, created_at, finished_at, total, summary, recoveries) "
                "SELECT %s, %s, %s, %s, %s, '{}'::jsonb, 'manual', 'completed', false, "
                # an equal share of the runs in each month, this month's in its first hours (it may be the 1st)
                "date_trunc('month', now()) - (g %% %s) * interval '1 month' + random() * interval '1 hour', "
                "now(), %s, '{}'::jsonb, 0 FROM generate_series(1, %s) g",
                [prompt.pk, version.pk, version.content_hash, suite.pk, llm.pk, months, CASES, runs_per_team],
            )
        cursor.execute(
            "INSERT INTO evals_evalresult (run_id, case_id, position, output, passed, verdicts, latency_ms, "
            "input_tokens, output_tokens, cost_usd, error, attempts, created_at) "
            "SELECT r.id, c.id, c.position, '', true, '[]'::jsonb, 10, 100, 100, random() * 0.002, '', 1, "
            "r.created_at + interval '1 minute' FROM evals_evalrun r JOIN evals_case c ON c.suite_id = r.suite_id"
        )
    with connection.cursor() as cursor:  # outside the transaction: VACUUM cannot run in one
        cursor.execute("VACUUM ANALYZE")
    return made[0][0]


def _report_from_results(query):
    """The cost report as it was summed before the roll-up: one GROUP BY over every result of the
    range (an admin's, so no team filter)."""
    from django.db.models import Count, F, Sum
    from django.db.models.functions import TruncMonth

    from evals import costs
    from evals.models import EvalResult

    start, _ = costs.month_bounds(query.since)
    _, end = costs.month_bounds(query.until)
    return list(
        EvalResult.objects.filter(created_at__gte=start, created_at__lt=end)
        .annotate(month=TruncMonth("created_at"), team=F("run__prompt__team__slug"))
        .values("month", "team")
        .annotate(cost_usd=Sum("cost_usd"), runs=Count("run", distinct=True), results=Count("id"))
        .order_by("-month", "-cost_usd", "team")
    )


def _median_ms(fn, rounds):
    fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--results", type=int, default=1_000_000)
    parser.add_argument("--teams", type=int, default=20)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="100,000 results")
    args = parser.parse_args()
    if args.quick:
        args.results = 100_000
    reset_database(args.database_url)
    with scratch_run("promptledger-bench-costs-") as (_procs, scratch):
        setup_django_here(server_env(args.database_url, scratch / "var"))
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        seeded = time.perf_counter()
        team = _seed(args.teams, args.results, args.months)
        print(f"seeded {args.results:,} results in {args.teams} teams over {args.months} months "
              f"in {time.perf_counter() - seeded:.1f} s")

        from core.actors import Actor
        from evals import budgets, costs
        from evals.models import EvalResult, RunSpend

        if not EvalResult.objects.exists():
            raise CouldNotRun("no results were seeded")
        start, end = costs.month_bounds(costs.this_month())
        in_month = EvalResult.objects.filter(created_at__gte=start, created_at__lt=end).count()
        this_month = EvalResult.objects.filter(created_at__gte=start, created_at__lt=end)
        team_month = this_month.filter(run__prompt__team=team).count()

        def ceiling():
            with connection.cursor() as cursor:
                cursor.execute("SELECT sum(cost_usd) FROM evals_evalresult WHERE created_at >= %s AND created_at < %s",
                               [start, end])
                cursor.fetchone()

        admin = Actor.for_system("bench")
        query = costs.cost_query(admin, group_by="team")
        check_ms = _median_ms(lambda: budgets.budget_status(team), args.rounds)
        ceiling_ms = _median_ms(ceiling, args.rounds)
        report_ms = _median_ms(lambda: costs.spend_report(admin, query), max(3, args.rounds // 4))
        report_live_ms = _median_ms(lambda: _report_from_results(query), 3)
        with connection.cursor() as cursor:
            month_spend, params = budgets._month_spend(costs.this_month()).filter(
                run__prompt__team=team).values("cost_usd").query.sql_with_params()
            cursor.execute(f"EXPLAIN SELECT sum(cost_usd) FROM ({month_spend}) s", params)
            plan = [row[0] for row in cursor.fetchall()]
        rolled_up = RunSpend.objects.count()
    print("what | rows in range | ms (median)")
    print(f"budget check (one team, this month) | {team_month:,} of the team | {check_ms:.2f}")
    print(f"ceiling: SUM over this month's results, every team, no join | {in_month:,} | {ceiling_ms:.2f}")
    print(f"cost report (admin, by team, 6 months), from the roll-up | {rolled_up:,} roll-up rows "
          f"| {report_ms:.2f}")
    print(f"the same report summed from the results (before the roll-up) | {args.results:,} total "
          f"| {report_live_ms:.2f}")
    print(f"ratio budget check / ceiling: {check_ms / ceiling_ms:.2f}x; report from the roll-up / from the results: "
          f"{report_ms / report_live_ms:.3f}x")
    print("plan of the month's spend:\n  " + "\n  ".join(plan))
    passed = check_ms <= TARGET_MS and report_ms <= REPORT_TARGET_MS
    verdict = "PASS" if check_ms <= TARGET_MS else "FAIL"
    print(f"{verdict}: budget check {check_ms:.2f} ms (target <= {TARGET_MS:.0f} ms)")
    print(f"{'PASS' if report_ms <= REPORT_TARGET_MS else 'FAIL'}: cost report {report_ms:.2f} ms "
          f"(target <= {REPORT_TARGET_MS:.0f} ms)")
    return 0 if passed else 1


if __name__ == "__main__":
    run_main(main)
