"""The register's browser forms: they check shape only; the services decide."""

import datetime

from django import forms

from core.tiers import TIERS

from .models import ModelReview, RiskPolicy

TIER_CHOICES = [(str(int(t)), t.label) for t in TIERS]


class ModelEditForm(forms.Form):
    owner = forms.CharField(max_length=150, help_text="The named person accountable for this model (a username).")
    failure_modes = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4}), label="Known failure modes"
    )
    limitations = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}))
    intended_use = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Intended use")
    suites = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Linked eval suites",
        help_text="The suites that cover this model's known failure modes.",
    )

    def __init__(self, *args, suites=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["suites"].choices = [(s.slug, f"{s.name} ({s.slug})") for s in suites]


class ReviewForm(forms.Form):
    findings = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), help_text="What the review found.")
    evidence_links = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Evidence links",
        help_text="One http(s) link a line: eval runs, incident reports, the provider's notes.",
    )
    decision = forms.ChoiceField(
        choices=ModelReview.DECISION_CHOICES, widget=forms.RadioSelect, initial=ModelReview.KEEP
    )
    allowed_tiers = forms.MultipleChoiceField(
        required=False, choices=TIER_CHOICES, widget=forms.CheckboxSelectMultiple, label="Tiers it may still carry",
        help_text="Only for “Restrict to tiers”.",
    )
    next_review_due = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Next review due",
        help_text="Quarterly by default; not needed when retiring.",
    )
    password = forms.CharField(
        required=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}), label="Your password",
    )

    def __init__(self, *args, today=None, **kwargs):
        super().__init__(*args, **kwargs)
        if today is not None:
            self.fields["next_review_due"].initial = today + datetime.timedelta(days=91)

    def links(self):
        return [line.strip() for line in self.cleaned_data.get("evidence_links", "").splitlines() if line.strip()]

    def tiers(self):
        return [int(t) for t in self.cleaned_data.get("allowed_tiers") or []]


class RiskPolicyForm(forms.Form):
    tier = forms.TypedChoiceField(choices=TIER_CHOICES, coerce=int)
    overdue_review = forms.ChoiceField(choices=RiskPolicy.OVERDUE_CHOICES)


class AccessReviewSignOffForm(forms.Form):
    """Signing off the access review: which quarter, a comment, the fingerprint of the report shown
    (a hidden field the page fills), and the password when the sign-in is too old."""

    period = forms.ChoiceField(help_text="The quarter this review covers.")
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="What you checked and what you found (accounts to remove, roles to lower), for the auditors.",
    )
    fingerprint = forms.CharField(widget=forms.HiddenInput, max_length=64)
    password = forms.CharField(
        required=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}), label="Your password",
    )

    def __init__(self, *args, periods=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["period"].choices = [(p, p) for p in periods]
