"""The audit trail's vocabulary: each app describes the actions it records (a label for people)
and the prefixes worth filtering on as one choice, when it starts (``AppConfig.ready``, next to
its ``events.py``). The audit log shows the labels and offers the groups from here, so the audit
app lists no other app's actions; an action nobody described shows its code."""

LABELS = {}
GROUPS = {}


def describe(labels, groups=None):
    """Add an app's actions (``{"action.code": "Label"}``) and groups (``{"prefix.": "Label"}``)."""
    LABELS.update(labels)
    GROUPS.update(groups or {})


def label(action):
    return LABELS.get(action, action)
