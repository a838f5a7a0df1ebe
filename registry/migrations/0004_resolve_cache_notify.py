"""On PostgreSQL, triggers that tell every web process what resolve may have cached wrongly: a
``pg_notify('promptledger_resolve', ...)`` per changed row of the tables a resolve answer depends on.
NOTIFY is transactional, so the message goes out when the change commits and never after a
rollback; the listener of each process (``registry.resolve_cache``) drops what the payload names:

- ``p:<prompt id>``   a deployment (pointer, canary, kill switch) or a prompt's slug or team changed;
- ``t:<key hash>``    a token was revoked, re-scoped, expired or deleted;
- ``u:<user id>``     a user was (de)activated or made superuser, or a membership or site role changed;
- ``*``               an environment changed, or one of the tables was truncated: drop everything.

Triggers, not service calls, so the admin, a data migration or a hand-written UPDATE invalidate too.
Writing ``last_used_at`` or ``last_login`` does not notify (the ``UPDATE OF`` column lists). Created
ENABLE ALWAYS, as the other triggers, so ``session_replication_role = replica`` does not silence them.
"""
from django.conf import settings
from django.db import migrations

CHANNEL = "promptledger_resolve"

FUNCTION = f"""
CREATE OR REPLACE FUNCTION registry_resolve_changed() RETURNS trigger AS $$
BEGIN
    IF TG_LEVEL = 'STATEMENT' OR TG_ARGV[0] = '*' THEN
        PERFORM pg_notify('{CHANNEL}', '*');
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify('{CHANNEL}', TG_ARGV[0] || ':' || (to_jsonb(OLD) ->> TG_ARGV[1]));
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        PERFORM pg_notify('{CHANNEL}', TG_ARGV[0] || ':' || (to_jsonb(NEW) ->> TG_ARGV[1]));
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""

# (table, events, kind, column): a row trigger per table, and a TRUNCATE trigger that drops everything.
WATCHED = [
    ("registry_deployment", "INSERT OR UPDATE OR DELETE", "p", "prompt_id"),
    ("registry_prompt", "UPDATE OF slug, team_id OR DELETE", "p", "id"),
    ("registry_environment", "INSERT OR UPDATE OR DELETE", "*", ""),
    ("registry_apitoken", "UPDATE OF revoked_at, expires_at, scopes, user_id, key_hash OR DELETE", "t", "key_hash"),
    ("registry_membership", "INSERT OR UPDATE OR DELETE", "u", "user_id"),
    ("registry_siterole", "INSERT OR UPDATE OR DELETE", "u", "user_id"),
    ("{user_table}", "UPDATE OF is_active, is_superuser OR DELETE", "u", "id"),
]

TRIGGERS = """
DROP TRIGGER IF EXISTS {table}_resolve_changed ON {table};
CREATE TRIGGER {table}_resolve_changed AFTER {events} ON {table}
    FOR EACH ROW EXECUTE FUNCTION registry_resolve_changed('{kind}', '{column}');
ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_resolve_changed;
DROP TRIGGER IF EXISTS {table}_resolve_truncated ON {table};
CREATE TRIGGER {table}_resolve_truncated AFTER TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION registry_resolve_changed('*', '');
ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_resolve_truncated;
"""

DROP = """
DROP TRIGGER IF EXISTS {table}_resolve_changed ON {table};
DROP TRIGGER IF EXISTS {table}_resolve_truncated ON {table};
"""


def _tables(apps):
    user_table = apps.get_model(settings.AUTH_USER_MODEL)._meta.db_table
    return [(table.format(user_table=user_table), *rest) for table, *rest in WATCHED]


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION)
    for table, events, kind, column in _tables(apps):
        schema_editor.execute(TRIGGERS.format(table=table, events=events, kind=kind, column=column))


def remove(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, *_ in _tables(apps):
        schema_editor.execute(DROP.format(table=table))
    schema_editor.execute("DROP FUNCTION IF EXISTS registry_resolve_changed();")


class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("core", "0001_initial"),
        ("registry", "0003_identity_moves_to_core"),
    ]
    operations = [migrations.RunPython(install, remove)]
