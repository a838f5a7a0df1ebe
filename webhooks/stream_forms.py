"""Browser forms of audit streams: they render the fields and place the service's field errors
next to them; what is valid (names, URLs and their SSRF rules, ranges) is ``webhooks.stream_services``'."""

from django import forms

from .forms import _DomainErrors
from .models import AuditStream


class StreamEditForm(_DomainErrors, forms.Form):
    url = forms.CharField(
        label="Receiver URL", max_length=2000,
        help_text="An http:// or https:// address that accepts POSTed batches; for Splunk, the HEC "
        "endpoint ending in /services/collector.",
        widget=forms.TextInput(attrs={"inputmode": "url", "spellcheck": "false",
                                      "placeholder": "https://siem.example.com/ingest"}),
    )
    format = forms.ChoiceField(label="Format", choices=AuditStream.FORMAT_CHOICES)
    token = forms.CharField(
        label="Token", required=False, max_length=400,
        help_text="Sent as `Authorization: Splunk <token>` (HEC) or `Bearer <token>` (JSON lines); stored "
        "encrypted, never shown again. Leave empty to keep the current one.",
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
    )
    sourcetype = forms.CharField(label="Splunk sourcetype", required=False, max_length=100,
                                 help_text="HEC only; promptledger:audit when empty.")
    batch_size = forms.IntegerField(label="Events per batch", min_value=1, max_value=5000)
    interval_seconds = forms.IntegerField(label="Seconds between batches once caught up", min_value=1,
                                          max_value=3600)

    @classmethod
    def for_stream(cls, stream, data=None):
        initial = {"url": stream.url, "format": stream.format, "sourcetype": stream.sourcetype,
                   "batch_size": stream.batch_size, "interval_seconds": stream.interval_seconds}
        return cls(data, initial=initial)

    def changes(self):
        """The cleaned values for ``update_stream``: an empty token keeps the current one."""
        values = dict(self.cleaned_data)
        if not values.get("token"):
            values.pop("token", None)
        return values


class StreamForm(StreamEditForm):
    name = forms.SlugField(label="Name", max_length=50,
                           help_text="Lower-case letters, digits and hyphens, e.g. splunk-prod; the metrics' label.")
    start = forms.ChoiceField(
        label="Start with",
        choices=[("beginning", "Every event, from the first one (a full, verifiable copy)"),
                 ("now", "Only events written from now on")],
        widget=forms.RadioSelect, initial="beginning",
    )
    field_order = ["name", "url", "format", "token", "sourcetype", "batch_size", "interval_seconds", "start"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["token"].help_text = ("Sent as `Authorization: Splunk <token>` (HEC) or `Bearer <token>` "
                                          "(JSON lines); stored encrypted, never shown again.")
        self.initial.setdefault("batch_size", 500)
        self.initial.setdefault("interval_seconds", 10)
        self.initial.setdefault("format", AuditStream.JSONL)
