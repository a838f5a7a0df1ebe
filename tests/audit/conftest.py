import pytest
from django.db import connection

from audit.services import record
from audit.transactions import change
from core.actors import Actor


@pytest.fixture
def make_events(db):
    def make(count, action="test.event", **extra):
        made = []
        for index in range(count):
            with change():
                made.append(
                    record(
                        actor=Actor.for_system(),
                        action=action,
                        target_type="test",
                        target_id=index,
                        data={"index": index},
                        **extra,
                    )
                )
        return made

    return make


@pytest.fixture
def tamper(postgres):
    """Run SQL as a superuser would: with the append-only triggers switched off (DDL is
    transactional on PostgreSQL, so the test's rollback switches them on again)."""

    def run(sql, params=None):
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER ALL")
            cursor.execute("ALTER TABLE audit_auditcheckpoint DISABLE TRIGGER ALL")
            cursor.execute(sql, params or [])

    return run
