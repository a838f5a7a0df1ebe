"""The Run picker of a version page and the refusal of ``start_run`` share one rule
(``evals.suite_fit``): gate suites that fit come first, then other suites that fit, then the ones
that cannot run, disabled with why; a refused run names its first offending cases in a list."""

import html
import re

import pytest

from core.actors import Actor
from core.errors import ValidationFailed
from evals import gates, services, suite_fit
from evals.models import EvalRun

pytestmark = pytest.mark.django_db

FITS = [{"vars": {"name": n}, "assertions": [{"type": "contains", "value": n}]} for n in ("Ada", "Grace")]
# 3 of 5 cases set a variable v1 does not declare (the example)
ACCOUNTS = [{"vars": {"name": "Ada"}, "assertions": [{"type": "contains", "value": "Ada"}]}] * 2 + [
    {"vars": {"name": f"N{i}", "account": f"AC-{i}"}, "assertions": [{"type": "contains", "value": "N"}]}
    for i in range(3)
]
ATTACKS = [
    {"vars": {"message": f"attack {i}"}, "assertions": [{"type": "not_contains", "value": "CANARY"}]} for i in range(7)
]


@pytest.fixture
def suites(cast, version):
    author, admin = Actor(user=cast["author"]), Actor(user=cast["admin"])
    made = {}
    for slug, team, cases, by in (
        ("letters-core", cast["team"], FITS, author),
        ("letters-gate", cast["team"], FITS, author),
        ("accounts", cast["team"], ACCOUNTS, author),
        ("attacks", None, ATTACKS, admin),
        ("empty", cast["team"], [], author),
    ):
        made[slug] = services.create_suite(actor=by, slug=slug, name=slug.title(), team=team)
        if cases:
            services.add_cases(actor=by, suite=made[slug], cases=cases)
    gates.set_gate(
        actor=Actor(user=cast["owner"]), prompt=version.prompt,
        suites=[{"suite": "letters-gate", "min_pass_rate": 0.9}, {"suite": "accounts", "min_pass_rate": 1.0}],
    )
    return made


def text(response):
    return html.unescape(response.content.decode())


def test_choices_put_fitting_gate_suites_first_then_fitting_ones_then_the_rest_with_why(cast, prompt, version, suites):
    choices = suite_fit.run_choices(Actor(user=cast["author"]), prompt, version)
    assert [(f.suite.slug, f.fits, f.gate) for f in choices] == [
        ("letters-gate", True, True),
        ("letters-core", True, False),
        ("accounts", False, True),
        ("empty", False, False),
        ("attacks", False, False),  # shared suites after the team's (``visible_suites``' order)
    ]
    assert suite_fit.default_choice(choices).slug == "letters-gate"
    why = {f.suite.slug: f.reason for f in choices}
    assert why["accounts"] == "3 of 5 cases need variable `account`, which v1 does not declare"
    assert why["attacks"] == (
        "7 of 7 cases need variable `message`, which v1 does not declare (and 1 other problem)"
    )
    assert suite_fit.fit_of(suites["attacks"], version).summary[1] == "7 of 7 cases lack `name`, which v1 requires"
    assert why["empty"] == "it has no cases yet"
    assert [m.position for m in choices[2].misfits] == [3, 4, 5]


def test_without_a_fitting_gate_suite_the_default_is_the_first_suite_that_fits(cast, prompt, version, suites):
    gates.set_gate(actor=Actor(user=cast["owner"]), prompt=prompt, suites=[{"suite": "accounts", "min_pass_rate": 1}])
    choices = suite_fit.run_choices(Actor(user=cast["author"]), prompt, version)
    assert choices[0].suite.slug == "letters-core" and not choices[0].gate
    assert suite_fit.default_choice(choices).slug == "letters-core"


def test_the_service_refuses_exactly_the_suites_the_picker_disables(cast, prompt, version, suites):
    actor = Actor(user=cast["author"])
    for fit in suite_fit.run_choices(actor, prompt, version):
        if fit.fits:
            assert services.start_run(actor=actor, prompt=prompt, version=version, suite=fit.suite).total == fit.total
            continue
        with pytest.raises(ValidationFailed) as refused:
            services.start_run(actor=actor, prompt=prompt, version=version, suite=fit.suite)
        assert refused.value.code in ("empty_suite", "case_variables_mismatch"), fit.suite.slug
        if fit.misfits:
            assert fit.reason in refused.value.detail
            assert set(refused.value.field_errors) == {"cases[2].vars.account", "cases[3].vars.account",
                                                       "cases[4].vars.account"} or fit.suite.slug == "attacks"
    assert EvalRun.objects.count() == 2


def test_the_version_page_offers_fitting_suites_and_disables_the_rest_saying_why(client, cast, version, suites):
    client.force_login(cast["author"])
    body = text(client.get("/prompts/loan-letter/versions/1/"))
    select = re.search(r'<select name="suite".*?</select>', body, re.S).group(0)
    groups = re.findall(r'<optgroup label="([^"]+)">(.*?)</optgroup>', select, re.S)
    assert [title for title, _ in groups] == [
        "Gate suites of this prompt", "Suites that fit this version", "Cannot run on this version"
    ]
    assert '<option value="letters-gate" selected>★ Letters-Gate (payments, 2 cases) · gate ≥ 90%' in groups[0][1]
    assert re.findall(r'<option value="([a-z-]+)" disabled>', groups[2][1]) == ["accounts", "empty", "attacks"]
    why = re.search(r'<details class="unfit-suites".*?</details>', body, re.S).group(0)
    assert "3 suites cannot run on v1: why" in why
    assert "3 of 5 cases need variable `account`, which v1 does not declare." in why
    assert '<span class="badge gate-mark">gate</span>' in why  # accounts is a gate suite that cannot run


def test_a_refused_run_lists_its_first_offending_cases(client, cast, version, suites):
    client.force_login(cast["author"])
    response = client.post("/evals/prompts/loan-letter/versions/1/run/", {"suite": "attacks"})
    assert response.status_code == 400
    body = text(response)
    listed = re.search(r'<ul class="refusal-list">(.*?)</ul>', body, re.S).group(1)
    items = re.findall(r"<li>(.*?)</li>", listed, re.S)
    assert len(items) == suite_fit.FIRST_FEW
    assert "Case 1</a>: 'message' is not declared by this version (declared: name); 'name' is required" in items[0]
    assert "… and 2 more." in body
    assert "case_variables_mismatch" in body
    assert '<option value="letters-gate" selected>' in body  # the picker again, to choose another suite
    assert not EvalRun.objects.exists()


def test_an_empty_suite_is_refused_with_its_reason_listed(client, cast, version, suites):
    client.force_login(cast["author"])
    response = client.post("/evals/prompts/loan-letter/versions/1/run/", {"suite": "empty"})
    assert response.status_code == 400
    body = text(response)
    assert "The run was not started:</strong> suite 'empty' has no cases" in body
    assert "<li><code>suite</code>: add at least one case before running it</li>" in body


def test_each_kind_of_misfit_is_named_once_with_how_many_cases_have_it(cast, version):
    author = Actor(user=cast["author"])
    suite = services.create_suite(actor=author, slug="mixed", name="Mixed", team=cast["team"])
    services.add_cases(actor=author, suite=suite, cases=[
        {"vars": {"name": 5}, "assertions": [{"type": "contains", "value": "x"}]},
        {"vars": {}, "assertions": [{"type": "contains", "value": "x"}]},
        {"vars": {"name": "Ada", "tone": "warm"}, "assertions": [{"type": "contains", "value": "x"}]},
        {"vars": {"name": "Ada", "tone": "cold"}, "assertions": [{"type": "contains", "value": "x"}]},
    ])
    fit = suite_fit.fit_of(suite, version)
    assert fit.summary == (
        "2 of 4 cases need variable `tone`, which v1 does not declare",
        "1 of 4 cases lacks `name`, which v1 requires",
        "1 of 4 cases gives `name` a value that is not a string",
    )
    assert fit.reason == "2 of 4 cases need variable `tone`, which v1 does not declare (and 2 other problems)"
    assert [m.position for m in fit.misfits] == [1, 2, 3, 4]
