"""The spend roll-up (``RunSpend``): what each run's results cost per quarter hour, kept by triggers
on ``evals_evalresult`` so the costs page and budgets sum thousands of roll-up rows instead of
every result (issue 18: ``/costs/`` took 1.65 s at 1,000,000 results).

PostgreSQL: statement-level triggers with transition tables, so a batch of results is ONE upsert
per (run, quarter hour) it touches, taken in (run, bucket) order (two writers of one run lock the
same roll-up row in the same order). SQLite (the embedded mode): row-level triggers, same sums.
An insert adds, a delete takes away (only from a row that is still there: when a run is deleted
Django may delete its roll-up rows before its results), an update does both. A TRUNCATE of the
results empties the roll-up. The triggers are ENABLE ALWAYS, like the audit ones. The existing
results are summed into the roll-up once, here, and the two indexes results carried for summing
spend by time are dropped.
"""
import django.db.models.deletion
from django.db import migrations, models

BUCKET = "to_timestamp(floor(extract(epoch FROM created_at) / 900) * 900)"

POSTGRES = f"""
CREATE OR REPLACE FUNCTION evals_run_spend_add() RETURNS trigger AS $$
BEGIN
    INSERT INTO evals_runspend (run_id, bucket, cost_usd, results)
    SELECT run_id, {BUCKET}, sum(cost_usd), count(*) FROM new_results
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (run_id, bucket) DO UPDATE
       SET cost_usd = evals_runspend.cost_usd + EXCLUDED.cost_usd,
           results = evals_runspend.results + EXCLUDED.results;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION evals_run_spend_remove() RETURNS trigger AS $$
BEGIN
    UPDATE evals_runspend s
       SET cost_usd = s.cost_usd - gone.cost_usd, results = s.results - gone.results
      FROM (SELECT run_id, {BUCKET} AS bucket, sum(cost_usd) AS cost_usd, count(*) AS results
              FROM old_results GROUP BY 1, 2 ORDER BY 1, 2) gone
     WHERE s.run_id = gone.run_id AND s.bucket = gone.bucket;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION evals_run_spend_truncate() RETURNS trigger AS $$
BEGIN
    DELETE FROM evals_runspend;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER evals_result_spend_insert AFTER INSERT ON evals_evalresult
    REFERENCING NEW TABLE AS new_results FOR EACH STATEMENT EXECUTE FUNCTION evals_run_spend_add();
CREATE TRIGGER evals_result_spend_delete AFTER DELETE ON evals_evalresult
    REFERENCING OLD TABLE AS old_results FOR EACH STATEMENT EXECUTE FUNCTION evals_run_spend_remove();
CREATE TRIGGER evals_result_spend_update_old AFTER UPDATE ON evals_evalresult
    REFERENCING OLD TABLE AS old_results FOR EACH STATEMENT EXECUTE FUNCTION evals_run_spend_remove();
CREATE TRIGGER evals_result_spend_update_new AFTER UPDATE ON evals_evalresult
    REFERENCING NEW TABLE AS new_results FOR EACH STATEMENT EXECUTE FUNCTION evals_run_spend_add();
CREATE TRIGGER evals_result_spend_truncate AFTER TRUNCATE ON evals_evalresult
    FOR EACH STATEMENT EXECUTE FUNCTION evals_run_spend_truncate();
ALTER TABLE evals_evalresult ENABLE ALWAYS TRIGGER evals_result_spend_insert;
ALTER TABLE evals_evalresult ENABLE ALWAYS TRIGGER evals_result_spend_delete;
ALTER TABLE evals_evalresult ENABLE ALWAYS TRIGGER evals_result_spend_update_old;
ALTER TABLE evals_evalresult ENABLE ALWAYS TRIGGER evals_result_spend_update_new;
ALTER TABLE evals_evalresult ENABLE ALWAYS TRIGGER evals_result_spend_truncate;

INSERT INTO evals_runspend (run_id, bucket, cost_usd, results)
SELECT run_id, {BUCKET}, sum(cost_usd), count(*) FROM evals_evalresult GROUP BY 1, 2;
"""  # noqa: S608 - constant SQL, no input

POSTGRES_DROP = """
DROP TRIGGER IF EXISTS evals_result_spend_insert ON evals_evalresult;
DROP TRIGGER IF EXISTS evals_result_spend_delete ON evals_evalresult;
DROP TRIGGER IF EXISTS evals_result_spend_update_old ON evals_evalresult;
DROP TRIGGER IF EXISTS evals_result_spend_update_new ON evals_evalresult;
DROP TRIGGER IF EXISTS evals_result_spend_truncate ON evals_evalresult;
DROP FUNCTION IF EXISTS evals_run_spend_add();
DROP FUNCTION IF EXISTS evals_run_spend_remove();
DROP FUNCTION IF EXISTS evals_run_spend_truncate();
"""

# SQLite keeps datetimes as UTC text 'YYYY-MM-DD HH:MM:SS[.ffffff]'; the bucket is written the same way.
SQLITE_BUCKET = "datetime((CAST(strftime('%s', {row}.created_at) AS INTEGER) / 900) * 900, 'unixepoch')"
SQLITE_ADD = f"""
    INSERT INTO evals_runspend (run_id, bucket, cost_usd, results)
    VALUES (NEW.run_id, {SQLITE_BUCKET.format(row="NEW")}, NEW.cost_usd, 1)
    ON CONFLICT (run_id, bucket) DO UPDATE
       SET cost_usd = cost_usd + excluded.cost_usd, results = results + 1;"""  # noqa: S608 - constant SQL
SQLITE_REMOVE = f"""
    UPDATE evals_runspend SET cost_usd = cost_usd - OLD.cost_usd, results = results - 1
     WHERE run_id = OLD.run_id AND bucket = {SQLITE_BUCKET.format(row="OLD")};"""  # noqa: S608 - constant SQL
SQLITE = [
    f"CREATE TRIGGER evals_result_spend_insert AFTER INSERT ON evals_evalresult BEGIN {SQLITE_ADD} END",
    f"CREATE TRIGGER evals_result_spend_delete AFTER DELETE ON evals_evalresult BEGIN {SQLITE_REMOVE} END",
    "CREATE TRIGGER evals_result_spend_update AFTER UPDATE OF run_id, cost_usd, created_at ON evals_evalresult"
    f" BEGIN {SQLITE_REMOVE} {SQLITE_ADD} END",
    "INSERT INTO evals_runspend (run_id, bucket, cost_usd, results)"  # noqa: S608 - constant SQL
    f" SELECT run_id, {SQLITE_BUCKET.format(row='evals_evalresult')}, sum(cost_usd), count(*)"
    " FROM evals_evalresult GROUP BY 1, 2",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS evals_result_spend_insert",
    "DROP TRIGGER IF EXISTS evals_result_spend_delete",
    "DROP TRIGGER IF EXISTS evals_result_spend_update",
]


def _execute(schema_editor, postgresql, sqlite):
    vendor = schema_editor.connection.vendor
    statements = [postgresql] if vendor == "postgresql" else sqlite if vendor == "sqlite" else []
    for statement in statements:
        schema_editor.execute(statement, params=None)  # no placeholders: strftime's %s stays


def install(apps, schema_editor):
    _execute(schema_editor, POSTGRES, SQLITE)


def remove(apps, schema_editor):
    _execute(schema_editor, POSTGRES_DROP, SQLITE_DROP)


class Migration(migrations.Migration):

    dependencies = [
        ('evals', '0006_budgets'),
    ]

    operations = [
        migrations.CreateModel(
            name='RunSpend',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('bucket', models.DateTimeField(help_text='The start of the quarter hour (UTC) its results were written in.')),
                ('cost_usd', models.FloatField(default=0.0)),
                ('results', models.IntegerField(default=0)),
                ('run', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='evals.evalrun')),
            ],
            options={
                'indexes': [models.Index(fields=['bucket'], name='run_spend_bucket_idx')],
                'constraints': [models.UniqueConstraint(fields=('run', 'bucket'), name='run_spend_unique')],
            },
        ),
        migrations.RunPython(install, remove),
        # Spend is no longer summed from results: their two indexes for it go (one less to write per result).
        migrations.RemoveIndex(model_name='evalresult', name='eval_result_created_idx'),
        migrations.RemoveIndex(model_name='evalresult', name='eval_result_run_created_idx'),
    ]
