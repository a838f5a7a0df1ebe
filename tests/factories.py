"""factory_boy factories shared by every test folder."""

import factory
from django.contrib.auth import get_user_model

from registry.models import LLMModel, Membership, Prompt, Team


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    first_name = factory.LazyAttribute(lambda u: u.username.capitalize())
    password = factory.django.Password("correct-horse-battery")


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"team-{n}")
    name = factory.LazyAttribute(lambda t: t.slug.replace("-", " ").title())


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    team = factory.SubFactory(TeamFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.AUTHOR


class LLMModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LLMModel
        django_get_or_create = ("provider", "model_id")

    provider = LLMModel.OFFLINE
    model_id = "offline-echo-1"
    owner = factory.SubFactory(UserFactory, username="model-owner")
    status = LLMModel.APPROVED


class PromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prompt

    slug = factory.Sequence(lambda n: f"prompt-{n}")
    name = factory.LazyAttribute(lambda p: p.slug.replace("-", " ").capitalize())
    team = factory.SubFactory(TeamFactory)
    tier = 2
    owner = factory.SubFactory(UserFactory)
    tags = factory.LazyFunction(list)
    data_categories = factory.LazyFunction(list)


def version_body(content="Write to {{ name }}.", **overrides):
    """A valid version push body (API shape)."""
    body = {
        "messages": [{"role": "system", "content": content}],
        "variables": {"name": {"type": "string", "required": True}},
        "model": {
            "provider": "offline",
            "name": "offline-echo-1",
            "params": {"temperature": 0},
            "response_schema": None,
        },
        "message": "test version",
    }
    body.update(overrides)
    return body
