"""The default tier policies of DESIGN.md, as rows admins can then edit."""

from django.db import migrations


def seed(apps, schema_editor):
    from approvals.policy import DEFAULTS

    TierPolicy = apps.get_model("approvals", "TierPolicy")
    for tier, fields in DEFAULTS.items():
        TierPolicy.objects.get_or_create(tier=tier, defaults=fields)


class Migration(migrations.Migration):
    dependencies = [("approvals", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
