"""Browser forms: they check the shape of what a person typed (JSON that parses, a choice that
exists) and hand the rest to the services, whose ``ValidationFailed.field_errors`` they place
next to the matching field. No domain rule is repeated here."""

import json
import re

from django import forms
from django.conf import settings
from django.forms import formset_factory

from core.tiers import TIERS

from .rendering import ROLES

TIER_CHOICES = [("", "Any tier")] + [(str(t.value), t.label) for t in TIERS]


class PromptFilterForm(forms.Form):
    """The prompt list's filters; every field is optional and an invalid value is just ignored."""

    q = forms.CharField(required=False, label="Search", max_length=200)
    team = forms.ChoiceField(required=False, label="Team")
    tier = forms.ChoiceField(required=False, label="Tier", choices=TIER_CHOICES)
    tag = forms.ChoiceField(required=False, label="Tag")
    data_category = forms.ChoiceField(required=False, label="Data category")

    def __init__(self, *args, teams=(), tags=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [("", "All teams")] + [(t.slug, t.name) for t in teams]
        self.fields["tag"].choices = [("", "Any tag")] + [(t, t) for t in tags]
        self.fields["data_category"].choices = [("", "Any data")] + [
            (c, c.upper() if len(c) <= 3 else c.capitalize()) for c in settings.PROMPTLEDGER_DATA_CATEGORIES
        ]

    def filters(self):
        """The valid filters as keyword arguments for ``selectors.prompt_list``."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return {name: data.get(name) or None for name in ("q", "team", "tier", "tag", "data_category")}


class JSONTextField(forms.CharField):
    """A textarea holding JSON; a parse error names the line and column."""

    widget = forms.Textarea

    def __init__(self, *, empty=None, **kwargs):
        self.empty = empty
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_python(self, value):
        text = super().to_python(value)
        if not text:
            return self.empty
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", code="json"
            ) from exc


def as_json(value):
    return json.dumps(value, indent=2, ensure_ascii=False)


class MessageForm(forms.Form):
    role = forms.ChoiceField(choices=[(r, r.capitalize()) for r in ROLES], label="Role")
    # strip=False: the template is hashed as written; only the browser's CRLF is undone.
    content = forms.CharField(
        required=False,
        strip=False,
        label="Template",
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "mono"}),
    )

    def clean_content(self):
        return self.cleaned_data["content"].replace("\r\n", "\n")


MessageFormSet = formset_factory(MessageForm, extra=0, can_delete=True)


class VersionDetailsForm(forms.Form):
    variables = JSONTextField(
        label="Variables",
        empty={},
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "mono"}),
        help_text='Name → declaration, e.g. {"name": {"type": "string", "required": true}}.',
    )
    llm_model = forms.ModelChoiceField(queryset=None, label="Model", empty_label=None)
    params = JSONTextField(
        label="Parameters",
        empty={},
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "mono"}),
        help_text='Sent to the provider as is, e.g. {"temperature": 0}.',
    )
    response_schema = JSONTextField(
        label="Response schema",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "mono"}),
        help_text="Optional JSON schema the answer must follow. Leave empty for free text.",
    )
    message = forms.CharField(
        required=False,
        label="Change note",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why this change? Reviewers read this next to the diff.",
    )

    def __init__(self, *args, llm_models, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["llm_model"]
        field.queryset = llm_models
        field.label_from_instance = lambda m: f"{m.get_provider_display()} · {m.model_id} ({m.get_status_display()})"


# Where each service field_errors key belongs in the form.
_MESSAGE_KEY = re.compile(r"^messages\[(\d+)\](?:\.(role|content))?$")
_DETAIL_FIELDS = {
    "model": "llm_model",
    "model.provider": "llm_model",
    "model.name": "llm_model",
    "model.params": "params",
    "model.response_schema": "response_schema",
    "message": "message",
    "variables": "variables",
}


_ROW_LABELS = {"content": "template", "role": "role"}


class VersionEditor:
    """The new-version form: message rows (a formset) plus the version's details."""

    prefix = "messages"

    def __init__(self, data=None, *, llm_models, initial=None):
        initial = initial or {}
        self.messages = MessageFormSet(data, prefix=self.prefix, initial=initial.get("messages"))
        self.details = VersionDetailsForm(data, llm_models=llm_models, initial=initial.get("details"))
        self.message_errors = []  # errors about the list of messages as a whole
        self.summary = []  # (label, anchor, text) for the error summary at the top

    @classmethod
    def initial_from(cls, version):
        """Initial values copied from ``version`` (or a blank one-message start)."""
        if version is None:
            return {
                "messages": [{"role": "system", "content": ""}],
                "details": {"variables": "{}", "params": "{}", "response_schema": ""},
            }
        config = version.model_config
        return {
            "messages": [dict(m) for m in version.messages],
            "details": {
                "variables": as_json(version.variables),
                "llm_model": version.llm_model_id,
                "params": as_json(config.get("params") or {}),
                "response_schema": as_json(config["response_schema"]) if config.get("response_schema") else "",
            },
        }

    def with_extra_message(self, data):
        """The same input plus one empty message row (the "Add message" button, no script needed)."""
        data = data.copy()
        key = f"{self.prefix}-TOTAL_FORMS"
        total = int(data.get(key) or 0)
        data[key] = str(total + 1)
        data[f"{self.prefix}-{total}-role"] = "user"
        return type(self)(data, llm_models=self.details.fields["llm_model"].queryset)

    def is_valid(self):
        valid = self.messages.is_valid() & self.details.is_valid()
        if not valid:
            self._summarize()
        return valid

    def _kept_rows(self):
        return [i for i, form in enumerate(self.messages.forms) if not form.cleaned_data.get("DELETE")]

    def payload(self):
        """Keyword arguments for ``services.create_version``."""
        data = self.details.cleaned_data
        llm = data["llm_model"]
        rows = self.messages.forms
        return {
            "messages": [
                {"role": rows[i].cleaned_data["role"], "content": rows[i].cleaned_data["content"]}
                for i in self._kept_rows()
            ],
            "variables": data["variables"],
            "model": {
                "provider": llm.provider,
                "name": llm.model_id,
                "params": data["params"],
                "response_schema": data["response_schema"],
            },
            "message": data["message"],
        }

    def add_domain_errors(self, exc):
        """Put each of a ``ValidationFailed``'s field errors next to its field."""
        kept = self._kept_rows()
        for key, texts in (exc.field_errors or {}).items():
            texts = [str(t) for t in texts]
            match = _MESSAGE_KEY.match(key)
            if match and int(match.group(1)) < len(kept):
                form = self.messages.forms[kept[int(match.group(1))]]
                for text in texts:
                    form.add_error(match.group(2), text)
            elif key == "messages" or key.startswith("messages"):
                self.message_errors.extend(texts)
            elif key.startswith("variables."):
                name = key.removeprefix("variables.")
                for text in texts:
                    self.details.add_error("variables", f"{name}: {text}")
            elif key in _DETAIL_FIELDS:
                for text in texts:
                    self.details.add_error(_DETAIL_FIELDS[key], text)
            else:
                for text in texts:
                    self.details.add_error(None, f"{key}: {text}")
        if not exc.field_errors:
            self.details.add_error(None, exc.detail)
        self._summarize()

    def _summarize(self):
        summary = []
        for error in self.details.non_field_errors():
            summary.append(("", "", error))
        for text in self.message_errors:
            summary.append(("Messages", "messages", text))
        for index, form in enumerate(self.messages.forms):
            for name, errors in form.errors.items():
                label = f"Message {index + 1} {_ROW_LABELS.get(name, '')}".strip()
                anchor = form[name].id_for_label if name in form.fields else f"message-{index}"
                summary.extend((label, anchor, e) for e in errors)
        for error in self.messages.non_form_errors():
            summary.append(("Messages", "messages", error))
        for name, errors in self.details.errors.items():
            if name == "__all__":
                continue
            field = self.details[name]
            summary.extend((field.label, field.id_for_label, e) for e in errors)
        self.summary = summary


class TeamOrSiteWideForm(forms.Form):
    """A form whose ``team`` field lists the person's teams and, when they may, one choice for no
    team at all (site-wide); ``chosen_team()`` is the Team, or None for site-wide."""

    SITE_WIDE = "__site__"
    site_wide_label = "Every team (site-wide)"

    def __init__(self, *args, teams=(), may_site_wide=False, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(t.slug, t.name) for t in teams]
        if may_site_wide:
            choices.append((self.SITE_WIDE, self.site_wide_label))
        self.fields["team"].choices = choices
        self.teams = {t.slug: t for t in teams}

    def chosen_team(self):
        slug = self.cleaned_data["team"]
        return None if slug == self.SITE_WIDE else self.teams[slug]

