"""The audit log's filter form. It only renders the filters and places errors next to them: which
filters exist and what a valid value is are decided by ``audit.selectors.clean_filters``, the same
check the API and the export use."""

import re

from django import forms

from core import vocabulary


def action_label(action):
    return vocabulary.label(action)


class AuditFilterForm(forms.Form):
    since = forms.CharField(required=False, label="Since", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.CharField(required=False, label="Until", widget=forms.DateInput(attrs={"type": "date"}))
    action = forms.ChoiceField(required=False, label="Action")
    team = forms.ChoiceField(required=False, label="Team")
    prompt = forms.CharField(
        required=False, label="Prompt", max_length=100, widget=forms.TextInput(attrs={"placeholder": "slug"})
    )
    actor = forms.CharField(
        required=False, label="Actor", max_length=150, widget=forms.TextInput(attrs={"placeholder": "username"})
    )

    def __init__(self, *args, teams=(), **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("since", "until"):
            # A date picker cannot show a time or a typo from the address; a text box keeps it visible.
            value = self.data.get(name, "") if self.is_bound else ""
            if value and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
                self.fields[name].widget = forms.TextInput()
        current = self.data.get("action", "") if self.is_bound else ""
        actions = [(code, f"{label} · {code}") for code, label in vocabulary.LABELS.items()]
        groups = [(prefix, f"{label} · {prefix}*") for prefix, label in vocabulary.GROUPS.items()]
        known = {code for code, _ in actions} | {prefix for prefix, _ in groups}
        if current and current not in known:  # an action without a label yet, or a prefix typed in the URL
            actions.insert(0, (current, current + ("*" if current.endswith(".") else "")))
        self.fields["action"].choices = [("", "Any action"), ("Groups", groups), ("Actions", actions)]
        team_choices = [(t.slug, t.name) for t in teams]
        current_team = self.data.get("team", "") if self.is_bound else ""
        if current_team and current_team not in {slug for slug, _ in team_choices}:
            team_choices.append((current_team, current_team))
        self.fields["team"].choices = [("", "All teams"), *team_choices]

    def show_errors(self, exc):
        """Place a ``ValidationFailed`` from ``clean_filters`` under the fields it names."""
        self.is_valid()
        for name, messages in exc.field_errors.items():
            for message in messages:
                self.add_error(name if name in self.fields else None, message)
