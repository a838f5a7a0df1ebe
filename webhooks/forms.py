"""Browser forms of webhooks. They only render the fields and place errors next to them: which
URLs and events are valid, and who may subscribe for which team, are ``webhooks.services``' rules,
whose ``ValidationFailed`` field errors land on the matching field."""

from django import forms

from registry.forms import TeamOrSiteWideForm

from .models import ALL_EVENTS, EVENTS

EVENT_HELP = {
    "version.created": "A new version of a prompt is written (not an identical push).",
    "deploy_request.opened": "Someone asks to deploy a version.",
    "deploy_request.approved": "A deploy request is approved.",
    "deploy_request.rejected": "A deploy request is rejected.",
    "deployment.changed": "A label moves: an environment now serves another version (or canary).",
    "kill_switch.changed": "A prompt is switched off or back on in an environment.",
    "eval_run.completed": "An eval run finishes (completed, with errors, or cancelled).",
    "gate.failed": "A version fails its gate when checked.",
    "drift.alert": "A nightly run of what is live in production drifted.",
    "model.review_due": "A model's quarterly review is due or overdue (site-wide subscriptions).",
    "budget.warning": "A team's eval spend reached 80% of its monthly budget (once a month).",
}
EVENT_CHOICES = [(ALL_EVENTS, "Every event, including ones added later")] + [
    (name, f"{name} — {EVENT_HELP[name]}") for name in EVENTS
]


class _DomainErrors:
    def add_domain_errors(self, exc):
        placed = False
        for name, messages in exc.field_errors.items():
            if name in self.fields:
                for message in messages:
                    self.add_error(name, message)
                placed = True
        if not placed:
            self.add_error(None, exc.detail)


class SubscriptionForm(_DomainErrors, TeamOrSiteWideForm):
    url = forms.CharField(
        label="Payload URL",
        max_length=2000,
        help_text="An http:// or https:// address that accepts POST requests with a JSON body.",
        widget=forms.TextInput(
            attrs={"placeholder": "https://hooks.example.com/promptledger", "inputmode": "url", "spellcheck": "false"}
        ),
    )
    team = forms.ChoiceField(label="Whose events", help_text="A team's events, or every team's (admins).")
    events = forms.MultipleChoiceField(
        label="Events", choices=EVENT_CHOICES, widget=forms.CheckboxSelectMultiple, required=False
    )
    description = forms.CharField(label="Description", required=False, max_length=200)


class SubscriptionEditForm(_DomainErrors, forms.Form):
    url = forms.CharField(
        label="Payload URL", max_length=2000, widget=forms.TextInput(attrs={"inputmode": "url", "spellcheck": "false"})
    )
    events = forms.MultipleChoiceField(
        label="Events", choices=EVENT_CHOICES, widget=forms.CheckboxSelectMultiple, required=False
    )
    description = forms.CharField(label="Description", required=False, max_length=200)
    active = forms.BooleanField(label="Active: send deliveries to this URL", required=False)

    @classmethod
    def for_subscription(cls, subscription, data=None):
        initial = {
            "url": subscription.url,
            "events": subscription.events,
            "description": subscription.description,
            "active": subscription.active,
        }
        return cls(data, initial=initial)
