"""The audit log's filter form. It only renders the filters and places errors next to them: which
filters exist and what a valid value is are decided by ``audit.selectors.clean_filters``, the same
check the API and the export use."""

import re

from django import forms

# Every action the services record, with a label for people. A new event type shows its code until
# it gets a label here.
ACTION_LABELS = {
    "auth.login": "Signed in",
    "auth.logout": "Signed out",
    "auth.login_failed": "Sign-in failed",
    "token.issued": "Token issued",
    "token.revoked": "Token revoked",
    "team.created": "Team created",
    "membership.added": "Member added",
    "membership.changed": "Member's role changed",
    "membership.removed": "Member removed",
    "site_role.granted": "Site role granted",
    "site_role.revoked": "Site role revoked",
    "llm_model.registered": "Model registered",
    "llm_model.updated": "Model updated",
    "prompt.created": "Prompt created",
    "prompt.updated": "Prompt edited",
    "version.created": "Version created",
    "deployment.changed": "Deployment changed",
    "kill_switch.changed": "Kill switch changed",
    "audit.exported": "Audit trail exported",
    "audit.key_rotated": "Audit signing key rotated",
    "suite.created": "Suite created",
    "cases.added": "Cases added",
    "eval_run.started": "Eval run started",
    "eval_run.cancel_requested": "Eval run cancelled",
    "eval_run.completed": "Eval run finished",
    "gate.updated": "Gate changed",
    "gate.evaluated": "Gate evaluated",
    "drift.scheduled": "Drift runs scheduled",
    "drift.checked": "Drift checked",
    "drift.alert": "Drift alert",
    "drift.acknowledged": "Drift notice acknowledged",
    "deploy_request.opened": "Deploy request opened",
    "deploy_request.approved": "Request approved",
    "deploy_request.rejected": "Request rejected",
    "deploy_request.decision_withdrawn": "Decision withdrawn",
    "deploy_request.withdrawn": "Request withdrawn",
    "deploy_request.superseded": "Request superseded",
    "deploy_request.deployed": "Request deployed",
    "deploy_request.break_glass": "Break-glass rollback",
    "deploy_request.review_signed": "Break-glass review signed",
    "deploy_request.review_completed": "Break-glass review completed",
    "prompt.tier_changed": "Tier lowered",
    "prompt.approvers_changed": "Named approvers changed",
    "approver_group.created": "Approver group created",
    "approver_group.updated": "Approver group changed",
    "tier_policy.updated": "Tier policy edited",
    "webhook.created": "Webhook created",
    "webhook.updated": "Webhook changed",
    "webhook.deleted": "Webhook deleted",
    "webhook.secret_rotated": "Webhook secret rotated",
    "webhook.test_sent": "Webhook test sent",
    "webhook.redelivered": "Webhook redelivered",
}

# Prefixes (``auth.`` matches every ``auth.*`` action) worth offering as one choice.
ACTION_GROUPS = {
    "auth.": "Sign-ins and sign-outs",
    "token.": "API tokens",
    "membership.": "Team membership",
    "site_role.": "Site roles",
    "llm_model.": "Model register",
    "prompt.": "Prompt details",
    "eval_run.": "Eval runs",
    "gate.": "Gates",
    "drift.": "Drift",
    "deploy_request.": "Deploy requests and approvals",
    "webhook.": "Webhooks",
}


def action_label(action):
    return ACTION_LABELS.get(action, action)


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
        actions = [(code, f"{label} · {code}") for code, label in ACTION_LABELS.items()]
        groups = [(prefix, f"{label} · {prefix}*") for prefix, label in ACTION_GROUPS.items()]
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
