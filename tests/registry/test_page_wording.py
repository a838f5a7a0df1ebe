"""Wording on pages (issue 17): defaults shown as the JSON a prompt declares them in, counts that
agree with their nouns."""

from types import SimpleNamespace

from django.test import Client

from core.actors import Actor
from evals.forms import RunStartForm
from evals.suite_fit import SuiteFit
from registry.services import create_version
from tests.factories import version_body


def test_a_boolean_default_shows_as_json_not_python(cast, prompt):
    body = version_body("Write to {{ name }}{% if formal %}, formally{% endif %}.")
    body["variables"]["formal"] = {"type": "boolean", "required": False, "default": False}
    create_version(actor=Actor(user=cast["author"]), prompt=prompt, **body)
    client = Client()
    client.force_login(cast["viewer"])
    html = client.get(f"/prompts/{prompt.slug}/versions/1/").content.decode()
    assert "<code>false</code>" in html and "<code>False</code>" not in html


def test_the_run_picker_counts_one_case_and_many_cases():
    fits = [
        SuiteFit(suite=SimpleNamespace(slug=slug, name=slug.title(), team_id=None, team=None), version_number=1,
                 total=n, misfits=(), summary=())
        for slug, n in (("one", 1), ("two", 2))
    ]
    groups = RunStartForm(choices=fits).fields["suite"].choices
    labels = {slug: label for _, options in groups for slug, label in options}
    assert labels == {"one": "One (shared, 1 case)", "two": "Two (shared, 2 cases)"}


def test_the_admin_says_deliveries_not_deliverys():
    from webhooks.models import Delivery

    assert Delivery._meta.verbose_name_plural == "deliveries"
