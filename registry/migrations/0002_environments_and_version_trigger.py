"""Default environments, and on PostgreSQL a trigger that refuses any UPDATE of a prompt version
(created ENABLE ALWAYS, so session_replication_role = replica does not switch it off)."""
from django.conf import settings
from django.db import migrations

TRIGGER_SQL = """
CREATE OR REPLACE FUNCTION registry_promptversion_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'prompt versions are immutable (version id ' || OLD.id || ')',
        ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS registry_promptversion_no_update ON registry_promptversion;
CREATE TRIGGER registry_promptversion_no_update BEFORE UPDATE ON registry_promptversion
    FOR EACH ROW EXECUTE FUNCTION registry_promptversion_immutable();
ALTER TABLE registry_promptversion ENABLE ALWAYS TRIGGER registry_promptversion_no_update;
"""

DROP_SQL = """
DROP TRIGGER IF EXISTS registry_promptversion_no_update ON registry_promptversion;
DROP FUNCTION IF EXISTS registry_promptversion_immutable();
"""


def create_environments(apps, schema_editor):
    Environment = apps.get_model("registry", "Environment")
    for position, slug in enumerate(settings.PROMPTLEDGER_ENVIRONMENTS):
        Environment.objects.get_or_create(slug=slug, defaults={"name": slug.capitalize(), "position": position})


def install_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGGER_SQL)


def remove_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL)


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_initial")]

    operations = [
        migrations.RunPython(create_environments, migrations.RunPython.noop),
        migrations.RunPython(install_trigger, remove_trigger),
    ]
