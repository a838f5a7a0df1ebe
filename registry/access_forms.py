"""Browser forms for API tokens, teams and site roles. They check shape only; which scopes a person
may hold, how long a token may live and who may change a team are the services' rules, whose
``ValidationFailed`` field errors land next to the matching field."""

from datetime import UTC, datetime, timedelta

from django import forms
from django.utils import timezone

from .models import APIToken, Membership, SiteRole

SCOPE_HELP = {
    "prompts:read": "read prompts, versions, resolve what is deployed",
    "prompts:write": "create prompts, push versions; owners administer teams",
    "evals:run": "start eval runs, edit suites",
    "deploy": "open, approve and deploy requests; kill switches",
    "audit:read": "read and export the audit events you can see",
}


class DomainErrorsForm(forms.Form):
    """A form that places a service's ``ValidationFailed`` field errors on its own fields
    (``field_map`` renames the service's names), and the rest at the top."""

    field_map = {}

    def add_domain_errors(self, exc):
        placed = False
        for name, texts in (exc.field_errors or {}).items():
            name = self.field_map.get(name, name)
            if name in self.fields:
                for text in texts:
                    self.add_error(name, str(text))
                placed = True
        if not placed:
            self.add_error(None, exc.detail)


class TokenForm(DomainErrorsForm):
    name = forms.CharField(
        label="Name", required=False, max_length=100, help_text="What it is for, e.g. “CI for loan-letter”."
    )
    scopes = forms.MultipleChoiceField(
        label="Scopes", required=False, widget=forms.CheckboxSelectMultiple,
        choices=[(scope, scope) for scope in APIToken.SCOPES],
    )
    expires_in_days = forms.IntegerField(label="Expires in (days)", min_value=1)

    field_map = {"expires_at": "expires_in_days"}

    def __init__(self, *args, default_days, max_days, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["expires_in_days"]
        field.initial = default_days
        field.help_text = f"From today; at most {max_days} days."
        field.widget.attrs.update({"min": 1, "max": max_days, "inputmode": "numeric"})

    def expires_at(self):
        try:
            return timezone.now() + timedelta(days=self.cleaned_data["expires_in_days"])
        except OverflowError:  # days beyond the calendar: let the service say what is allowed
            return datetime.max.replace(tzinfo=UTC)


class TeamForm(DomainErrorsForm):
    slug = forms.CharField(label="Slug", max_length=64, help_text="Lowercase letters, digits, hyphens: “claims”.")
    name = forms.CharField(label="Name", max_length=200, help_text="As pages show it: “Claims”.")


class MemberForm(DomainErrorsForm):
    username = forms.CharField(label="Username", max_length=150)
    role = forms.ChoiceField(label="Role", choices=Membership.ROLE_CHOICES, initial=Membership.VIEWER)


class SiteRoleForm(DomainErrorsForm):
    username = forms.CharField(label="Username", max_length=150)
    role = forms.ChoiceField(label="Site role", choices=SiteRole.ROLE_CHOICES)
