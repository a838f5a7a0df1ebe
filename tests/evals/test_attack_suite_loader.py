"""The shared attack suite loads through the services, once, and runs on a prompt declaring ``message``."""

from django.core.management import call_command

from core.actors import Actor
from evals import attack_suites, runner
from evals.models import Suite
from evals.services import start_run
from registry.services import create_version


def test_load_attack_suites_is_idempotent_and_shared(db, capsys):
    call_command("load_attack_suites")
    call_command("load_attack_suites")
    suite = Suite.objects.get(slug="attacks-core")
    assert suite.team is None
    assert suite.cases.count() == len(attack_suites.CASES) >= 40
    assert "0 added" in capsys.readouterr().out


def test_the_attack_suite_runs_against_a_prompt_declaring_message(cast, prompt):
    from registry.models import LLMModel

    LLMModel.objects.get_or_create(
        provider="offline", model_id="offline-judge-1", defaults={"owner": cast["owner"], "status": "approved"}
    )
    call_command("load_attack_suites")
    version, _ = create_version(
        actor=Actor(user=cast["author"]),
        prompt=prompt,
        messages=[
            {"role": "system", "content": "You help bank customers."},
            {"role": "user", "content": "{{ message }}"},
        ],
        variables={"message": {"type": "string"}},
        model={"provider": "offline", "name": "offline-echo-1", "params": {}},
        message="attack target",
    )
    run = start_run(
        actor=Actor(user=cast["author"]), prompt=prompt, version=version, suite=Suite.objects.get(slug="attacks-core")
    )
    finished = runner.execute(run.pk)
    assert finished.status == "completed"
    assert finished.summary["done"] == len(attack_suites.CASES)
    # The echo model repeats each attack back, so some leak-detecting assertions must catch it.
    assert finished.pass_rate < 1.0
