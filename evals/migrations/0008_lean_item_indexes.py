"""Leaner indexes for the runner (issue 18): each item marked done or claimed wrote an entry into
every index of ``evals_evalitem``, and a claim walked every item of its run, the done ones too.

- The (run, status) and (status, lease_until) indexes become partial: ``eval_item_open_idx`` holds
  only the items still to run (pending or claimed), ``eval_item_leased_idx`` only the leased ones
  (the reaper's). An item marked done leaves both instead of adding entries to them.
- The run foreign keys of items and results lose their own indexes: each table's unique (run, case)
  constraint leads with the run, and serves every lookup by run.

The foreign keys' indexes are dropped with DROP INDEX: on SQLite, Django's way (AlterField) rebuilds
the table, which would drop the spend triggers of ``evals_evalresult`` (0007) with it.
"""
import django.db.models.deletion
from django.db import migrations, models

FOREIGN_KEY_INDEXES = [("evals_evalitem", "evals_evalitem_run_id_97946640"),
                       ("evals_evalresult", "evals_evalresult_run_id_98bf1466")]


class Migration(migrations.Migration):

    dependencies = [
        ('evals', '0007_run_spend'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='evalitem',
            name='evals_evali_run_id_5b571d_idx',
        ),
        migrations.RemoveIndex(
            model_name='evalitem',
            name='evals_evali_status_f6ea37_idx',
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='evalitem',
                    name='run',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                            related_name='items', to='evals.evalrun'),
                ),
                migrations.AlterField(
                    model_name='evalresult',
                    name='run',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                            related_name='results', to='evals.evalrun'),
                ),
            ],
            database_operations=[
                migrations.RunSQL(f'DROP INDEX IF EXISTS "{index}"', f'CREATE INDEX "{index}" ON "{table}" ("run_id")')
                for table, index in FOREIGN_KEY_INDEXES
            ],
        ),
        migrations.AddIndex(
            model_name='evalitem',
            index=models.Index(condition=models.Q(('status__in', ['pending', 'claimed'])), fields=['run', 'status'],
                               name='eval_item_open_idx'),
        ),
        migrations.AddIndex(
            model_name='evalitem',
            index=models.Index(condition=models.Q(('status', 'claimed')), fields=['lease_until'],
                               name='eval_item_leased_idx'),
        ),
    ]
