"""Browser forms of the approval flow: they check shape only; the services decide."""

from django import forms

from registry.models import Environment


class RequestForm(forms.Form):
    environment = forms.ChoiceField()
    canary_percent = forms.IntegerField(
        required=False, min_value=1, max_value=99, label="Canary percentage",
        help_text="Leave empty for a full deploy; 1–99 sends that share of units to this version beside the live one.",
    )
    rationale = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), help_text="Why this should go live: approvers read it first."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["environment"].choices = [(e.slug, e.name) for e in Environment.objects.all()]


class DecisionForm(forms.Form):
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    password = forms.CharField(
        required=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        label="Your password", help_text="Tier-0 approvals are signed: enter your password again.",
    )


class RollbackForm(forms.Form):
    environment = forms.ChoiceField()
    rationale = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["environment"].choices = [(e.slug, e.name) for e in Environment.objects.all()]


class BreakGlassForm(RollbackForm):
    version = forms.IntegerField(min_value=1, help_text="A version that was live in this environment before.")
    rationale = None
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What is wrong and why it cannot wait for approvals. Flagged everywhere; named approvers "
        "sign a review afterwards.",
    )


class TierChangeForm(forms.Form):
    tier = forms.TypedChoiceField(coerce=int, choices=[(1, "Tier 1"), (2, "Tier 2"), (3, "Tier 3")])
    rationale = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


class PolicyForm(forms.Form):
    required_approvals = forms.IntegerField(min_value=0, max_value=10)
    named_approvers_only = forms.BooleanField(required=False)
    requires_gate = forms.BooleanField(required=False)
    allowed_model_statuses = forms.MultipleChoiceField(
        choices=[("approved", "Approved"), ("restricted", "Restricted")], widget=forms.CheckboxSelectMultiple
    )
    reauth_for_approval = forms.BooleanField(required=False, label="Password again to approve")
    reason = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Reason for the change",
        help_text="Kept in the audit log with the change.",
    )
