"""Browser forms of evals: they check the shape of what a person sent (a file that parses, a
choice that exists) and hand the rest to ``evals.services``, whose ``ValidationFailed`` errors they
place next to the field, or next to the line of the uploaded file, that caused them. No domain
rule is repeated here."""

import json
import re

from django import forms
from django.conf import settings

from registry.forms import TeamOrSiteWideForm

from . import case_files
from .models import EvalRun

STATUS_CHOICES = [("", "Any status")] + list(EvalRun.STATUS_CHOICES)
_CASE_KEY = re.compile(r"^cases\[(\d+)\]\.?(.*)$")


class RunFilterForm(forms.Form):
    """The runs list's filters; every field is optional and an unknown value is just ignored."""

    # A slug typed, not a choice among every prompt that has runs (ten thousand options at scale).
    prompt = forms.SlugField(required=False, label="Prompt", max_length=100,
                             widget=forms.TextInput(attrs={"placeholder": "prompt slug"}))
    suite = forms.ChoiceField(required=False, label="Suite")
    status = forms.ChoiceField(required=False, label="Status", choices=STATUS_CHOICES)

    def __init__(self, *args, suites=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["suite"].choices = [("", "All suites")] + [(s, s) for s in suites]

    def filters(self):
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return {name: data.get(name) or None for name in ("prompt", "suite", "status")}


class SuiteForm(TeamOrSiteWideForm):
    """A new suite: the slug and name rules are the service's; the team is one the person may
    author in (or, for admins, no team: a shared suite)."""

    site_wide_label = "Shared (every team, site-wide)"

    name = forms.CharField(label="Name", max_length=200)
    slug = forms.CharField(
        label="Slug", max_length=100, help_text="Lowercase letters, digits and hyphens; used in the API and CLI."
    )
    team = forms.ChoiceField(label="Team")
    description = forms.CharField(label="Description", required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def add_domain_errors(self, exc):
        placed = False
        for name, messages in exc.field_errors.items():
            if name in self.fields:
                for message in messages:
                    self.add_error(name, message)
                placed = True
        if not placed:
            self.add_error(None, exc.detail)


class CaseUploadForm(forms.Form):
    """A ``.jsonl`` file (one case a line), a ``.json`` file (a list of cases, or one case) or a
    ``.csv`` file with the columns of the CSV download."""

    file = forms.FileField(
        label="Cases file",
        help_text='.jsonl (one case a line), .json (a list) or .csv (as downloaded). '
        'A case: {"vars": {...}, "expected": "...", "assertions": [{"type": "contains", "value": "..."}]}',
    )
    replace = forms.BooleanField(label="Replace every case (only while no run has used them)", required=False)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        name = upload.name.lower()
        if not name.endswith((".jsonl", ".ndjson", ".json", ".csv")):
            raise forms.ValidationError("choose a .jsonl, .json or .csv file", code="extension")
        if upload.size > settings.PROMPTLEDGER_MAX_REQUEST_BYTES:
            limit = settings.PROMPTLEDGER_MAX_REQUEST_BYTES / 1024 / 1024
            raise forms.ValidationError(f"the file is larger than {limit:g} MB; split it", code="size")
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise forms.ValidationError("the file is not UTF-8 text", code="encoding") from exc
        if name.endswith(".json"):
            self.lines = None
            try:
                cases = json.loads(text)
            except json.JSONDecodeError as exc:
                raise forms.ValidationError(
                    f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", code="json"
                ) from exc
            return [cases] if isinstance(cases, dict) else cases
        reader = case_files.read_csv if name.endswith(".csv") else case_files.read_jsonl
        try:
            cases, self.lines = reader(text)
        except case_files.CaseFileError as exc:
            raise forms.ValidationError(str(exc), code="format") from exc
        return cases

    def case_errors(self, exc):
        """The service's ``cases[i].…`` errors as (where, what, message) rows: where is the file's
        line for JSONL, the case's number for JSON."""
        rows = []
        for key, messages in exc.field_errors.items():
            match = _CASE_KEY.match(key)
            if match:
                index = int(match.group(1))
                lines = getattr(self, "lines", None)
                where = f"line {lines[index]}" if lines and index < len(lines) else f"case {index + 1}"
                what = match.group(2)
            else:
                where, what = "file", key if key != "cases" else ""
            rows.extend((where, what, message) for message in messages)
        return rows or [("file", "", exc.detail)]


class SuiteSelect(forms.Select):
    """A select whose options for suites that cannot run are there but disabled."""

    def __init__(self, *args, disabled=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.disabled_values = set(disabled)

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if value in self.disabled_values:
            option["attrs"]["disabled"] = True
        return option


def _suite_label(fit):
    suite = fit.suite
    owner = "shared" if suite.team_id is None else suite.team.slug
    label = f"{suite.name} ({owner}, {fit.total} case{'s' if fit.total != 1 else ''})"
    if fit.gate:
        label = f"★ {label} · gate ≥ {fit.gate_min_pass_rate:.0%}"
    return label


class RunStartForm(forms.Form):
    """The Run button's form on a version page. ``choices`` are ``suite_fit.run_choices``: gate
    suites that fit, other suites that fit, then the ones that cannot run, disabled. Which suite fits
    is the service's rule (``suite_fit``); the form only lays the answer out."""

    suite = forms.ChoiceField(label="Suite")
    trigger = forms.CharField(widget=forms.HiddenInput, initial=EvalRun.MANUAL, required=False)

    def __init__(self, *args, choices=(), default=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fits = list(choices)
        groups = [
            ("Gate suites of this prompt", [f for f in self.fits if f.fits and f.gate]),
            ("Suites that fit this version", [f for f in self.fits if f.fits and not f.gate]),
            ("Cannot run on this version", [f for f in self.fits if not f.fits]),
        ]
        self.fields["suite"].choices = [
            (title, [(f.suite.slug, _suite_label(f)) for f in fits]) for title, fits in groups if fits
        ]
        self.fields["suite"].widget = SuiteSelect(disabled=[f.suite.slug for f in self.fits if not f.fits])
        self.fields["suite"].widget.choices = self.fields["suite"].choices
        if default is not None:
            self.fields["suite"].initial = default.slug

    @property
    def unfit(self):
        return [f for f in self.fits if not f.fits]

    @property
    def runnable(self):
        return any(f.fits for f in self.fits)
