"""Build a database at the scale the issue names: 10,000 prompts, 100,000 versions, 1,000,000 eval
results and 1,000,000 audit events on PostgreSQL, for ``bench/pages.py`` to time every list against.

The cast and the few rows that carry rules (teams, memberships, site roles, the registered model, a
webhook subscription) are made through the services or the ORM; the bulk rows are written by
PostgreSQL itself (``INSERT ... SELECT generate_series``), so seeding takes minutes, not hours. The
audit events come from ``bench/audit_export.py``'s seeder: chained, checkpointed and signed as the
app writes them, so the audit pages and the verifier see a real chain.

    python bench/seed_scale.py [--database-url URL] [--prompts 10000] [--versions 10] \
        [--runs 10000] [--results 100] [--events 1000000] [--keep]

The database (``promptledger_scale`` unless ``--database-url``) is dropped and made anew unless
``--keep`` is given and it already holds the seed. Prints what it made and how long each part took.
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402 - after the path insert, as every script here

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/promptledger_scale"
TEAMS = 50
SUITES = 100
CASES = 100
# The cast bench/pages.py signs in as: an admin, and in the first team a viewer and an approver.
CAST = {"admin": None, "viewer": "viewer", "approver": "approver", "owner": "owner"}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("SCALE_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--prompts", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=10, help="versions a prompt")
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--results", type=int, default=100, help=f"results a run (at most {CASES})")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="reuse the database when it holds the seed")
    args = parser.parse_args(argv)
    if not 1 <= args.results <= CASES:
        parser.error(f"--results must be 1 to {CASES}")
    return args


def step(name, work):
    started = time.perf_counter()
    result = work()
    print(f"  {name:<44} {time.perf_counter() - started:7.1f} s", flush=True)
    return result


def seeded(url):
    import psycopg

    try:
        with psycopg.connect(url) as conn:
            return conn.execute("SELECT count(*) FROM registry_prompt").fetchone()[0] > 0
    except psycopg.Error:
        return False


def make_cast():
    """Users, teams and roles through the services; returns the ids the bulk SQL needs."""
    from django.contrib.auth import get_user_model

    from core.actors import Actor
    from registry.models import Environment, LLMModel, SiteRole, Team
    from registry.services import add_member, create_team, grant_site_role

    system = Actor.for_system("bench")
    users = get_user_model()
    for username in ("admin", "viewer", "approver", "owner", "author"):
        users.objects.create_user(username, password="bench-password-1")  # noqa: S106 - a local bench
    grant_site_role(actor=system, username="admin", role=SiteRole.ADMIN)
    for n in range(1, TEAMS + 1):
        create_team(actor=system, slug=f"team-{n:03}", name=f"Team {n}")
    first = Team.objects.get(slug="team-001")
    for username, role in (("viewer", "viewer"), ("approver", "approver"), ("owner", "owner"), ("author", "author")):
        add_member(actor=system, team=first, username=username, role=role)
    model = LLMModel.objects.create(
        provider=LLMModel.OFFLINE, model_id="offline-echo-1", owner=users.objects.get(username="owner"),
        status=LLMModel.APPROVED,
    )
    return {
        "owner": users.objects.get(username="owner").pk, "author": users.objects.get(username="author").pk,
        "model": model.pk, "production": Environment.objects.get(slug="production").pk,
    }


BULK = [
    ("prompts", """
        INSERT INTO registry_prompt (slug, name, description, tier, tags, data_categories, created_at,
                                     updated_at, owner_id, team_id)
        SELECT format('prompt-%%s', lpad(g::text, 5, '0')), format('Prompt %%s', g), 'Seeded at scale',
               g %% 4, '["scale"]'::jsonb,
               CASE g %% 3 WHEN 0 THEN '["pii"]' WHEN 1 THEN '["none"]' ELSE '["financial"]' END::jsonb,
               now() - make_interval(mins => g), now(), %(owner)s, t.id
          FROM generate_series(1, %(prompts)s) g
          JOIN registry_team t ON t.slug = format('team-%%s', lpad(((g - 1) %% %(teams)s + 1)::text, 3, '0'))
    """),
    ("versions", """
        INSERT INTO registry_promptversion (number, messages, variables, model_config, change_note, content_hash,
                                            created_at, author_id, llm_model_id, parent_id, prompt_id)
        SELECT n, jsonb_build_array(jsonb_build_object('role', 'system',
                   'content', format('You answer for %%s, revision %%s. Be brief with {{ name }}.', p.slug, n))),
               '{"name": {"type": "string", "required": true}}'::jsonb,
               '{"provider": "offline", "name": "offline-echo-1", "params": {"temperature": 0},
                 "response_schema": null}'::jsonb,
               format('revision %%s', n), encode(sha256(convert_to(p.slug || ':' || n, 'UTF8')), 'hex'),
               p.created_at + make_interval(hours => n), %(author)s, %(model)s, NULL, p.id
          FROM registry_prompt p CROSS JOIN generate_series(1, %(versions)s) n
    """),
    ("production pointers", """
        INSERT INTO registry_deployment (canary_percent, disabled, disabled_reason, updated_at, environment_id,
                                         prompt_id, version_id)
        SELECT NULL, false, '', now(), %(production)s, v.prompt_id, v.id
          FROM registry_promptversion v WHERE v.number = %(versions)s
    """),
    ("suites", """
        INSERT INTO evals_suite (slug, name, description, created_at, updated_at, team_id)
        SELECT format('suite-%%s', lpad(g::text, 3, '0')), format('Suite %%s', g), '', now(), now(), t.id
          FROM generate_series(1, %(suites)s) g
          JOIN registry_team t ON t.slug = format('team-%%s', lpad(((g - 1) %% %(teams)s + 1)::text, 3, '0'))
    """),
    ("cases", """
        INSERT INTO evals_case (position, description, vars, expected, assertions, tags, created_at, suite_id)
        SELECT c, format('case %%s', c), jsonb_build_object('name', format('Customer %%s', c)), NULL,
               '[{"type": "contains", "value": "Customer"}]'::jsonb, '[]'::jsonb, now(), s.id
          FROM evals_suite s CROSS JOIN generate_series(1, %(cases)s) c
    """),
    ("deploy requests", """
        INSERT INTO approvals_deployrequest (kind, canary_percent, target_tier, content_hash, tier, policy_snapshot,
                                             rationale, status, created_at, updated_at, decided_at, deployed_at,
                                             break_glass, review_status, environment_id, llm_model_id, prompt_id,
                                             requested_by_id, version_id, deployed_by_id)
        SELECT 'deploy', NULL, NULL, v.content_hash, p.tier, (%(snapshots)s::jsonb) -> p.tier::text,
               'seeded', CASE WHEN v.number = %(versions)s THEN 'deployed' ELSE 'pending' END,
               v.created_at, v.created_at, NULL, CASE WHEN v.number = %(versions)s THEN v.created_at END,
               false, '', %(production)s, v.llm_model_id, p.id, %(author)s, v.id,
               CASE WHEN v.number = %(versions)s THEN %(owner)s END
          FROM registry_promptversion v JOIN registry_prompt p ON p.id = v.prompt_id
         WHERE v.number = %(versions)s OR (v.number = %(versions)s - 1 AND p.id %% 10 = 0)
    """),
    ("eval runs", """
        INSERT INTO evals_evalrun (content_hash, model_config, trigger, status, cancel_requested, created_at,
                                   started_at, finished_at, total, pass_rate, summary, llm_model_id, prompt_id,
                                   version_id, suite_id, recoveries)
        SELECT v.content_hash, v.model_config, 'manual', 'completed', false, v.created_at, v.created_at,
               v.created_at + interval '30 seconds', %(results)s, 0.9, '{}'::jsonb, v.llm_model_id, v.prompt_id,
               v.id, s.id, 0
          FROM (SELECT g, ((g - 1) %% (SELECT count(*) FROM registry_promptversion)) + 1 AS k
                  FROM generate_series(1, %(runs)s) g) r
          JOIN (SELECT row_number() OVER (ORDER BY id) AS k, * FROM registry_promptversion) v ON v.k = r.k
          JOIN (SELECT row_number() OVER (ORDER BY id) AS k, id FROM evals_suite) s
            ON s.k = (r.g - 1) %% %(suites)s + 1
    """),
    ("eval results", """
        INSERT INTO evals_evalresult (position, output, passed, verdicts, latency_ms, input_tokens, output_tokens,
                                      cost_usd, error, attempts, created_at, case_id, run_id)
        SELECT c.position, format('Hello Customer %%s, here is your answer.', c.position), c.position %% 10 <> 0,
               '[{"type": "contains", "passed": true}]'::jsonb, 20 + c.position, 40, 12, 0.00002, '', 1,
               r.finished_at, c.id, r.id
          FROM evals_evalrun r JOIN evals_case c ON c.suite_id = r.suite_id AND c.position <= %(results)s
    """),
]


def bulk(args, ids):
    import json

    from django.db import connection, transaction

    from approvals.models import TierPolicy

    snapshots = {str(policy.tier): policy.snapshot() for policy in TierPolicy.objects.all()}
    params = ids | {"snapshots": json.dumps(snapshots)} | {
        "prompts": args.prompts, "versions": args.versions, "runs": args.runs, "results": args.results,
        "teams": TEAMS, "suites": SUITES, "cases": CASES,
    }
    for name, sql in BULK:
        def run(sql=sql):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.rowcount
        rows = step(f"{name}", run)
        print(f"    {rows:,} rows", flush=True)
    with connection.cursor() as cursor:
        step("ANALYZE", lambda: cursor.execute("ANALYZE"))


def main(argv=None):
    args = parse_args(argv)
    if args.keep and seeded(args.database_url):
        print(f"{harness.database_name(args.database_url)} already holds the seed (--keep)")
        return 0
    harness.reset_database(args.database_url)
    var_dir = Path(os.environ.get("SCALE_VAR_DIR", harness.REPO / "var" / "scale"))
    env = harness.server_env(args.database_url, var_dir)
    env["PROMPTLEDGER_AUDIT_SIGNING_KEY"] = os.environ.get(
        "PROMPTLEDGER_AUDIT_SIGNING_KEY", "c2NhbGUtYmVuY2gtc2lnbmluZy1rZXktMzItYnl0ZXM="
    )
    harness.setup_django_here(env)
    from django.core.management import call_command

    started = time.perf_counter()
    print(f"seeding {harness.database_name(args.database_url)}:", flush=True)
    step("migrate", lambda: call_command("migrate", interactive=False, verbosity=0))
    ids = step("cast (services)", make_cast)
    bulk(args, ids)
    import audit_export

    step(f"{args.events:,} audit events (chained, signed)", lambda: audit_export.seed(events=args.events))
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
