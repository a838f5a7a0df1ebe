"""On PostgreSQL, triggers refuse UPDATE, DELETE and TRUNCATE on the audit tables, created
ENABLE ALWAYS so that session_replication_role = replica does not switch them off.

TRUNCATE alone may pass when the session sets ``promptledger.allow_audit_truncate = on``: the
test runner's flush between transactional tests needs it. It is no security boundary (a database
superuser can drop any trigger); the signed checkpoints and their outside sink are.
"""

from django.db import migrations

TABLES = ["audit_auditevent", "audit_auditcheckpoint"]

FUNCTIONS = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'the audit trail is append-only: ' || TG_OP || ' on ' || TG_TABLE_NAME || ' is refused',
        ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION audit_refuse_truncate() RETURNS trigger AS $$
BEGIN
    IF coalesce(current_setting('promptledger.allow_audit_truncate', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION USING
        MESSAGE = 'the audit trail is append-only: TRUNCATE on ' || TG_TABLE_NAME || ' is refused',
        ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

TRIGGERS = """
CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_truncate();
ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_no_change;
ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_no_truncate;
"""

DROP = """
DROP TRIGGER IF EXISTS {table}_no_change ON {table};
DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTIONS)
    for table in TABLES:
        schema_editor.execute(TRIGGERS.format(table=table))


def remove(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(DROP.format(table=table))
    schema_editor.execute(
        "DROP FUNCTION IF EXISTS audit_refuse_change(); DROP FUNCTION IF EXISTS audit_refuse_truncate();"
    )


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [migrations.RunPython(install, remove)]
