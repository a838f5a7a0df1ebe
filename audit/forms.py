"""The audit log's filter form. It only renders the filters and places errors next to them: which
filters exist and what a valid value is are decided by ``audit.selectors.clean_filters``, the same
check the API and the export use. The action filter offers the actions grouped by kind (the groups
each app describes in ``core.vocabulary``), each group also selectable as a whole."""

import re

from django import forms

from core import vocabulary

OTHER = "Other actions"


def action_label(action):
    return vocabulary.label(action)


def group_of(action):
    """The described group (its prefix) an action belongs to: the longest prefix that matches."""
    matches = [prefix for prefix in vocabulary.GROUPS if action.startswith(prefix)]
    return max(matches, key=len) if matches else None


def action_choices(current=""):
    """``[("", "Any action"), (group label, [(prefix, "All …"), (code, label), …]), …]``."""
    grouped = {prefix: [] for prefix in vocabulary.GROUPS}
    other = []
    for code, label in vocabulary.LABELS.items():
        prefix = group_of(code)
        (grouped[prefix] if prefix else other).append((code, label))
    known = set(vocabulary.LABELS) | set(vocabulary.GROUPS)
    if current and current not in known:  # an action without a label yet, or a prefix typed in the URL
        other.insert(0, (current, current + ("*" if current.endswith(".") else "")))
    choices = [("", "Any action")]
    for prefix, label in sorted(vocabulary.GROUPS.items(), key=lambda item: item[1].lower()):
        choices.append((label, [(prefix, f"All: {label.lower()}"), *sorted(grouped[prefix], key=lambda c: c[1])]))
    if other:
        choices.append((OTHER, sorted(other, key=lambda c: c[1])))
    return choices


class AuditFilterForm(forms.Form):
    since = forms.CharField(required=False, label="Since", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.CharField(required=False, label="Until", widget=forms.DateInput(attrs={"type": "date"}))
    action = forms.ChoiceField(required=False, label="Action")
    team = forms.ChoiceField(required=False, label="Team")
    actor = forms.CharField(
        required=False, label="Actor", max_length=150, widget=forms.TextInput(attrs={"placeholder": "username"})
    )
    prompt = forms.CharField(
        required=False, label="Prompt", max_length=100, widget=forms.TextInput(attrs={"placeholder": "slug"})
    )
    version = forms.CharField(
        required=False, label="Version", max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "placeholder": "number", "size": 6}),
    )
    deploy_request = forms.CharField(
        required=False, label="Deploy request", max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "placeholder": "id", "size": 6}),
    )

    def __init__(self, *args, teams=(), **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("since", "until"):
            # A date picker cannot show a time or a typo from the address; a text box keeps it visible.
            value = self.data.get(name, "") if self.is_bound else ""
            if value and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
                self.fields[name].widget = forms.TextInput()
        current = self.data.get("action", "") if self.is_bound else ""
        self.fields["action"].choices = action_choices(current)
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
