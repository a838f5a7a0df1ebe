"""Seal the webhook secrets stored before they were sealed (webhooks.secret_box)."""

from django.db import migrations


def seal_plaintext(apps, schema_editor):
    from webhooks.secret_box import PREFIX, seal

    Subscription = apps.get_model("webhooks", "Subscription")
    for subscription in Subscription.objects.exclude(secret__startswith=PREFIX).only("pk", "secret"):
        Subscription.objects.filter(pk=subscription.pk).update(secret=seal(subscription.secret))


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0001_initial")]
    operations = [migrations.RunPython(seal_plaintext, migrations.RunPython.noop)]
