"""Every state change of evals: suites, cases, starting and cancelling runs. Each checks
permission, writes, and records its audit event in one transaction; a run's work is queued only
after that transaction commits."""

from django.db import IntegrityError, connection, transaction
from django.db.models import Max

from audit.transactions import change, lock_rows, retry_transient
from core import access
from core.errors import Conflict, PermissionDenied, ValidationFailed
from registry.services.prompts import normalize_model_config, registered_model
from registry.services.validation import check_slug, check_storable, check_text

from . import assertions, budgets, events, queueing, runner, suite_fit
from .models import Case, EvalItem, EvalRun, Suite

TRIGGERS = [t for t, _ in EvalRun.TRIGGER_CHOICES]


def _require_suite_editor(actor, suite_team):
    access.require(actor, "suite.edit", team=suite_team)


@retry_transient
def create_suite(*, actor, slug, name, team=None, description=""):
    """A team's suite (its authors) or a shared site-wide one (admins)."""
    _require_suite_editor(actor, team)
    check_slug(slug)
    name = check_text(name, "name")
    try:
        with change():
            suite = Suite.objects.create(
                slug=slug,
                name=name,
                team=team,
                created_by=actor.user,
                description=check_text(description, "description", required=False, max_length=5000),
            )
            events.suite_created(actor, suite)
            return suite
    except IntegrityError as exc:
        raise Conflict(
            f"suite '{slug}' already exists", code="slug_taken", field_errors={"slug": ["already taken"]}
        ) from exc


@retry_transient
def add_cases(*, actor, suite, cases, replace=False):
    """Append cases to a suite (or replace them all); every case is checked before any is written."""
    _require_suite_editor(actor, suite.team)
    clean = assertions.normalize_cases(check_storable(cases, "cases"))
    with change():
        locked = lock_rows(Suite.objects).get(pk=suite.pk)
        if replace:
            used = EvalItem.objects.filter(case__suite=locked).exists()
            if used:
                raise Conflict(
                    "cases that runs used cannot be replaced; add new ones or make a new suite", code="cases_in_use"
                )
            Case.objects.filter(suite=locked).delete()
        start = (Case.objects.filter(suite=locked).aggregate(n=Max("position"))["n"] or 0) + 1
        made = Case.objects.bulk_create(
            [
                Case(
                    suite=locked,
                    position=start + i,
                    vars=c["vars"],
                    expected=c.get("expected"),
                    assertions=c["assertions"],
                    description=c.get("description", ""),
                    tags=c.get("tags", []),
                )
                for i, c in enumerate(clean)
            ]
        )
        locked.save(update_fields=["updated_at"])
        events.cases_added(actor, locked, count=len(made), replaced=replace, first_position=start)
    return made


def load_shared_suite(*, actor, spec):
    """Create the shared suite ``spec`` describes (``{slug, name, description, cases}``, e.g.
    ``attack_suites.SUITE``) or top it up with the cases a newer release appended; an existing suite
    with all its cases is left alone. Returns ``(suite, added)``. ``load_attack_suites`` and the demo
    load the attack suite through it."""
    suite = Suite.objects.filter(slug=spec["slug"]).first()
    if suite is None:
        suite = create_suite(actor=actor, slug=spec["slug"], name=spec["name"], team=None,
                             description=spec["description"])
    missing = spec["cases"][suite.cases.count():]
    if missing:
        add_cases(actor=actor, suite=suite, cases=missing)
    return suite, len(missing)


@retry_transient
def start_run(*, actor, prompt, version, suite, trigger=EvalRun.MANUAL, model=None):
    """Queue a run of ``suite`` against ``version`` (optionally on another registered model).

    Everything is checked before anything runs: the suite has cases, every case's variables match
    the version's declarations (``suite_fit``: the rule the Run picker offers suites by), the model
    is registered and not retired, and the team has not spent its month's eval budget
    (``budgets.check_run_allowed``: ``budget_exceeded`` for every trigger and every channel, unless an
    owner overrode the month). The run carries ``budget``, the team's budget status, for the caller
    to show a warning at 80%."""
    access.require(actor, "run.start", team=prompt.team)
    if version.prompt_id != prompt.pk:
        raise ValidationFailed("version is not a version of this prompt", field_errors={"version": ["wrong prompt"]})
    if suite.team_id is not None and suite.team_id != prompt.team_id:
        raise PermissionDenied(f"suite '{suite.slug}' belongs to another team", code="suite_of_other_team")
    if trigger not in TRIGGERS:
        raise ValidationFailed(
            f"unknown trigger '{trigger}'", field_errors={"trigger": [f"one of {', '.join(TRIGGERS)}"]}
        )
    model_config = version.model_config
    if model is not None:
        model_config = normalize_model_config({**version.model_config, **check_storable(model, "model")})
    llm_model = registered_model(model_config)
    # The columns the checks and the items need, not model instances: a run of thousands of cases
    # spent most of its start building them.
    cases = list(suite.cases.order_by("position").values_list("pk", "position", "vars", "expected", "assertions",
                                                              named=True))
    suite_fit.require_fit(suite_fit.fit_of(suite, version, cases=[(c.position, c.vars) for c in cases]))
    _check_judges(cases)
    with change():
        budget = budgets.check_run_allowed(prompt.team)
        run = EvalRun.objects.create(
            prompt=prompt,
            version=version,
            content_hash=version.content_hash,
            suite=suite,
            llm_model=llm_model,
            model_config=model_config,
            trigger=trigger,
            created_by=actor.user,
            total=len(cases),
        )
        _write_items(run, suite, cases)
        events.run_started(actor, run, cases=len(cases))
        transaction.on_commit(lambda: queueing.enqueue(run.pk))
    run.budget = budget
    return run


def _write_items(run, suite, cases):
    """One pending item per case, each with a snapshot of its case. On PostgreSQL one
    INSERT ... SELECT under the suite's row lock (which ``add_cases`` takes too), so the items are
    exactly the cases that were checked and no case row travels through Python twice."""
    if connection.vendor != "postgresql":
        EvalItem.objects.bulk_create(
            [
                EvalItem(
                    run=run,
                    case_id=c.pk,
                    position=c.position,
                    snapshot={"vars": c.vars, "expected": c.expected, "assertions": c.assertions},
                )
                for c in cases
            ],
            batch_size=1000,
        )
        return
    lock_rows(Suite.objects).filter(pk=suite.pk).values_list("pk", flat=True).first()
    items, case_table = EvalItem._meta.db_table, Case._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {items} (run_id, case_id, position, snapshot, status, lease_token, claims) "  # noqa: S608 - table names from the models
            f"SELECT %s, id, position, jsonb_build_object('vars', vars, 'expected', expected, "
            f"'assertions', assertions), %s, '', 0 FROM {case_table} WHERE suite_id = %s",
            [run.pk, EvalItem.PENDING, suite.pk],
        )
        written = cursor.rowcount
    if written != len(cases):
        raise Conflict("the suite's cases changed while the run was starting; start it again", code="suite_changed")


def _check_judges(cases):
    """Every judge model a case names (and the default judge, when any case uses a judge) must be
    registered and not retired, before anything runs."""
    from django.conf import settings

    payload = [{"assertions": c.assertions} for c in cases]
    judges = set(assertions.judge_models(payload))
    if any(a.get("type") == "llm_judge" and not a.get("judge") for c in cases for a in c.assertions):
        judges.add((settings.PROMPTLEDGER_JUDGE_PROVIDER, settings.PROMPTLEDGER_JUDGE_MODEL))
    for provider, name in sorted(judges):
        try:
            registered_model({"provider": provider, "name": name})
        except ValidationFailed as exc:
            raise ValidationFailed(
                f"judge model: {exc.detail}", code=exc.code, field_errors={"judge": [exc.detail]}
            ) from exc


def require_may_cancel(actor, run):
    """A run may be cancelled by its creator or the team's approvers and owners."""
    own = actor.user is not None and actor.user.pk == run.created_by_id
    access.require(actor, "run.cancel", team=run.prompt.team, own=own)


def may_cancel(actor, run):
    """Whether ``cancel_run`` would be allowed now: for pages deciding to offer the button."""
    if run.finished:
        return False
    try:
        require_may_cancel(actor, run)
    except PermissionDenied:
        return False
    return True


@retry_transient
def cancel_run(*, actor, run):
    """Ask workers to stop: a state they check before each provider call."""
    require_may_cancel(actor, run)
    with change():
        locked = lock_rows(EvalRun.objects).get(pk=run.pk)
        if locked.finished:
            raise Conflict(f"run {run.pk} already {locked.status}", code="run_finished")
        locked.cancel_requested = True
        locked.save(update_fields=["cancel_requested"])
        events.run_cancel_requested(actor, run)
    return runner.finalize(run.pk) or locked
