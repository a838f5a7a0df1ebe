"""Browser forms for setting a prompt up: creating it, its settings, named approvers, its tier, its
gate and its kill switches. They check shape only (a number that parses, text split into a list);
what is allowed (a known data category, an eligible approver, a tier one may set, a suite of the
team, a rate from 0 to 1) is the services' rule, whose ``ValidationFailed.field_errors`` land next
to the matching field. Choices are offered for convenience and never checked here, so an unknown
value reaches the service and comes back with its words."""

import re

from django import forms

from core.tiers import TIERS

from .access_forms import DomainErrorsForm
from .services.prompts import data_category_values
from .templatetags.registry_ui import TIER_MEANING, category_label

TIER_OPTIONS = [(str(t.value), f"{t.label}: {TIER_MEANING[t.value]}") for t in TIERS]
_LIST_SEPARATORS = re.compile(r"[,\s]+")


def split_list(text):
    """``"letters, email"`` as ``["letters", "email"]`` (commas or spaces)."""
    return [part for part in _LIST_SEPARATORS.split(text or "") if part]


class OpenMultipleChoiceField(forms.MultipleChoiceField):
    """Checkboxes whose values are not checked against the choices: the service checks them and
    says what is allowed."""

    widget = forms.CheckboxSelectMultiple

    def valid_value(self, value):
        return True


class OpenChoiceField(forms.CharField):
    """A select whose value is not checked against its options (the service checks it)."""

    def __init__(self, *, choices=(), **kwargs):
        kwargs.setdefault("widget", forms.Select(choices=choices))
        super().__init__(**kwargs)

    @property
    def choices(self):
        return self.widget.choices

    @choices.setter
    def choices(self, value):
        self.widget.choices = list(value)


def category_choices():
    return [(c, category_label(c)) for c in data_category_values()]


class PromptFieldsForm(DomainErrorsForm):
    """A prompt's details: the new-prompt form, and (as ``PromptSettingsForm``) its settings."""

    name = forms.CharField(label="Name", required=False, max_length=500, help_text="As pages show it: “Loan letter”.")
    description = forms.CharField(
        label="Description", required=False, widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What it is for and who reads its output.",
    )
    tags = forms.CharField(
        label="Tags", required=False, max_length=2000, help_text="Separated by commas, e.g. “letters, email”.",
    )
    owner = forms.CharField(
        label="Owner", required=False, max_length=150,
        help_text="The username of the person answerable for it; a member of its team.",
    )
    data_categories = OpenMultipleChoiceField(
        label="Data categories", required=False, help_text=(
            "What data it sees; reviewers and compliance filter on it. Tier-0 and Tier-1 prompts must "
            "declare it: choose None when it sees none of these."
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["data_categories"].choices = category_choices()

    def values(self):
        """The cleaned values in the services' shape (lists for tags and categories)."""
        data = dict(self.cleaned_data)
        if "tags" in data:
            data["tags"] = split_list(data["tags"])
        return data


class PromptCreateForm(PromptFieldsForm):
    slug = forms.CharField(
        label="Slug", required=False, max_length=200,
        help_text="How clients and the CLI name it: lowercase letters, digits, hyphens, e.g. “loan-letter”. "
        "It cannot change later.",
    )
    team = OpenChoiceField(label="Team", required=False)
    tier = OpenChoiceField(
        label="Risk tier", required=False, choices=TIER_OPTIONS,
        help_text="0 is the most critical. Its tier decides the approvals a deploy needs.",
    )
    field_order = ["slug", "name", "team", "tier", "owner", "description", "tags", "data_categories"]

    def __init__(self, *args, teams=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [(t.slug, t.name) for t in teams]
        self.fields["owner"].widget.attrs["list"] = "owner-suggestions"  # the team members, in the page


class PromptSettingsForm(PromptFieldsForm):
    """The settings a person may change: authors name, description and tags; owners (``govern``)
    also the owner and the data categories. Fields one may not change are not in the form at all."""

    GOVERNED = ("owner", "data_categories")

    def __init__(self, *args, govern=False, **kwargs):
        super().__init__(*args, **kwargs)
        if not govern:
            for name in self.GOVERNED:
                del self.fields[name]

    @classmethod
    def initial_from(cls, prompt):
        return {
            "name": prompt.name, "description": prompt.description, "tags": ", ".join(prompt.tags),
            "owner": prompt.owner.get_username(), "data_categories": list(prompt.data_categories),
        }


class ApproversForm(DomainErrorsForm):
    approvers = OpenMultipleChoiceField(
        label="Named approvers", required=False,
        help_text="Who may approve this prompt's deploys when its tier asks for named approvers.",
    )
    approver_groups = forms.CharField(
        label="Approver groups", required=False, max_length=2000,
        help_text="Slugs of the team's approver groups, separated by commas; any member of a group may approve.",
    )

    def __init__(self, *args, candidates=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["approvers"].choices = candidates

    def values(self):
        return {
            "approvers": list(self.cleaned_data["approvers"]),
            "approver_groups": split_list(self.cleaned_data["approver_groups"]),
        }


class TierRaiseForm(DomainErrorsForm):
    tier = OpenChoiceField(label="New tier", required=False)

    def __init__(self, *args, current, **kwargs):
        kwargs.setdefault("auto_id", "raise_%s")
        super().__init__(*args, **kwargs)
        # The nearest more critical tier first, so the default is the smallest step.
        self.fields["tier"].choices = [(v, label) for v, label in reversed(TIER_OPTIONS) if int(v) < current]


class TierLowerForm(forms.Form):
    """Rendered on the settings page and posted to the approval flow's tier-change request
    (``approvals:tier-change``), which reads the same field names."""

    tier = forms.ChoiceField(label="New tier")
    rationale = forms.CharField(
        label="Why", widget=forms.Textarea(attrs={"rows": 2}), help_text="Shown to those who approve the change.",
    )

    def __init__(self, *args, current, **kwargs):
        kwargs.setdefault("auto_id", "lower_%s")
        super().__init__(*args, **kwargs)
        self.fields["tier"].choices = [(value, label) for value, label in TIER_OPTIONS if int(value) > current]


_GATE_KEY = re.compile(r"^suites\[(\d+)\](?:\.(suite|min_pass_rate))?$")


class GateForm(forms.Form):
    """One row per suite the prompt may gate on: a checkbox and its minimum pass rate (0 to 1),
    plus the largest regression allowed against the live version."""

    max_regression = forms.CharField(
        label="Largest regression allowed", required=False, max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
        help_text="How far (0 to 1) a version's pass rate may fall below the live version's run of the same "
        "suite, e.g. 0.05. Empty: no regression check.",
    )

    def __init__(self, *args, suites=(), config=None, **kwargs):
        config = config or {"suites": [], "max_regression": None}
        chosen = {row["suite"]: row["min_pass_rate"] for row in config["suites"]}
        initial = {"max_regression": "" if config["max_regression"] is None else f"{config['max_regression']:g}"}
        self.suites = list(suites)
        for index, suite in enumerate(self.suites):
            initial[f"use_{index}"] = suite.slug in chosen
            initial[f"rate_{index}"] = f"{chosen.get(suite.slug, 0.9):g}"
        super().__init__(*args, initial=initial, **kwargs)
        for index, suite in enumerate(self.suites):
            owner = suite.team.name if suite.team_id else "shared"
            self.fields[f"use_{index}"] = forms.BooleanField(
                label=f"{suite.name} ({suite.slug}, {owner})", required=False,
            )
            self.fields[f"rate_{index}"] = forms.CharField(
                label=f"Minimum pass rate for {suite.slug}", required=False, max_length=20,
                widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 5}),
            )
        self.placed = []  # the field name of each suite sent to the service, in order

    def rows(self):
        """``(suite, use bound field, rate bound field)`` for the template."""
        return [(suite, self[f"use_{i}"], self[f"rate_{i}"]) for i, suite in enumerate(self.suites)]

    @staticmethod
    def _number(text):
        text = (text or "").strip()
        try:
            return float(text)
        except ValueError:
            return text  # the service names the field: "a number from 0 to 1"

    def values(self):
        """``{"suites": [...], "max_regression": ...}`` as ``set_gate`` takes them."""
        data = self.cleaned_data
        chosen, self.placed = [], []
        for index, suite in enumerate(self.suites):
            if data.get(f"use_{index}"):
                chosen.append({"suite": suite.slug, "min_pass_rate": self._number(data.get(f"rate_{index}"))})
                self.placed.append(f"rate_{index}")
        regression = (data.get("max_regression") or "").strip()
        return {"suites": chosen, "max_regression": self._number(regression) if regression else None}

    def add_domain_errors(self, exc):
        placed = False
        for key, texts in (exc.field_errors or {}).items():
            match = _GATE_KEY.match(key)
            name = None
            if match and int(match.group(1)) < len(self.placed):
                name = self.placed[int(match.group(1))]
            elif key == "max_regression":
                name = key
            for text in texts:
                self.add_error(name, str(text))
            placed = True
        if not placed:
            self.add_error(None, exc.detail)


class KillSwitchForm(DomainErrorsForm):
    """A kill switch flip: which environment, on or off, and why (the service requires a reason)."""

    environment = forms.CharField(widget=forms.HiddenInput, required=False)
    disabled = forms.TypedChoiceField(
        widget=forms.HiddenInput, choices=[("true", "stop"), ("false", "resume")],
        coerce=lambda value: value == "true",
    )
    reason = forms.CharField(
        label="Reason", required=False, widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Recorded in the audit log and sent with the webhook; the on-call team reads it.",
    )
