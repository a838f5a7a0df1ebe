"""The default per-tier rule on overdue model reviews (refuse for tiers 0 and 1, warn for 2 and 3),
and on PostgreSQL a trigger that refuses any UPDATE or DELETE of a signed review (created ENABLE
ALWAYS, so session_replication_role = replica does not switch it off)."""

from django.db import migrations

TRIGGER_SQL = """
CREATE OR REPLACE FUNCTION risk_modelreview_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'signed model reviews are immutable (review id ' || OLD.id || ')',
        ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS risk_modelreview_no_change ON risk_modelreview;
CREATE TRIGGER risk_modelreview_no_change BEFORE UPDATE OR DELETE ON risk_modelreview
    FOR EACH ROW EXECUTE FUNCTION risk_modelreview_immutable();
ALTER TABLE risk_modelreview ENABLE ALWAYS TRIGGER risk_modelreview_no_change;
"""

DROP_SQL = """
DROP TRIGGER IF EXISTS risk_modelreview_no_change ON risk_modelreview;
DROP FUNCTION IF EXISTS risk_modelreview_immutable();
"""

DEFAULTS = {0: "refuse", 1: "refuse", 2: "warn", 3: "warn"}


def seed_policies(apps, schema_editor):
    RiskPolicy = apps.get_model("risk", "RiskPolicy")
    for tier, rule in DEFAULTS.items():
        RiskPolicy.objects.get_or_create(tier=tier, defaults={"overdue_review": rule})


def install_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGGER_SQL)


def remove_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL)


class Migration(migrations.Migration):
    dependencies = [("risk", "0001_initial")]

    operations = [
        migrations.RunPython(seed_policies, migrations.RunPython.noop),
        migrations.RunPython(install_trigger, remove_trigger),
    ]
