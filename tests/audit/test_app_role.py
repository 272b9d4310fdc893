"""The application's database role (audit.database_roles): it writes the audit trail and every ordinary
table, and PostgreSQL refuses it whatever could rewrite the trail: UPDATE, DELETE, TRUNCATE, trigger
changes, replica mode. The suite connects as the owner; these tests take the application's role the way
the servers do, as the default connection's credentials."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.db.models.signals import post_migrate
from psycopg import errors

from audit import chain
from audit.database_roles import connected_as, grant_app_role
from audit.models import AuditEvent, ChainCheck, ChainHead
from audit.writer import Entry, record, record_many
from policies_app.models import Policy
from tests.factories import make_policy

ROLE = "console_app_test"
ALL_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


def _create_role(password: str) -> None:
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")
        if not cursor.fetchone()[0]:
            pytest.skip("these tests create a database role: DATABASE_URL's role needs CREATEROLE "
                        "(`python3 dev.py test`'s embedded PostgreSQL has it)")
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [ROLE])
        if cursor.fetchone() is None:
            cursor.execute(f"CREATE ROLE {quote(ROLE)} LOGIN")
        cursor.execute(f"ALTER ROLE {quote(ROLE)} PASSWORD %s", [password])  # bound client-side


@pytest.fixture
def app_role(transactional_db) -> dict[str, Any]:
    """The role, granted as `migrate` grants it; the credentials that connect as it."""
    password = secrets.token_urlsafe(24)
    _create_role(password)
    grant_app_role(ROLE)
    return {"USER": ROLE, "PASSWORD": password}


@pytest.fixture
def as_app_role(app_role) -> Iterator[None]:
    """The default connection is the application's role's until the test ends (before the flush that
    empties the tables, which the owner runs)."""
    with connected_as(app_role):
        yield


def _current_user() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        return cursor.fetchone()[0]


def _privileges(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT p FROM unnest(%s::text[]) AS p WHERE has_table_privilege(%s, %s, p)",
                       [list(ALL_PRIVILEGES), ROLE, table])
        return {row[0] for row in cursor.fetchall()}


def _refused(statement: str, params: Any = None) -> errors.Error:
    with pytest.raises(DatabaseError) as refusal, connection.cursor() as cursor:
        cursor.execute(statement, params)
    return refusal.value.__cause__


def test_the_application_role_writes_the_trail_through_every_writer_and_the_chain_verifies(as_app_role):
    assert _current_user() == ROLE
    version = make_policy()  # the policy services: ordinary tables and `record`
    before = AuditEvent.objects.count()
    record(actor=None, actor_name="system:test", action="note.added", obj=version, after={"note": "✓"})
    record_many(actor=None, actor_name="system:test", object_type=version,
                entries=[Entry(action=f"bulk.{n}", object_id=str(n)) for n in range(5)])
    with connection.cursor() as cursor:  # a raw multi-row INSERT: the trigger chains every row
        cursor.execute(f"INSERT INTO {AuditEvent._meta.db_table} (actor_name, action, object_type, object_id, "
                       "object_repr, created_at) VALUES ('system:raw', 'raw.one', 'test.thing', '1', '', now()), "
                       "('system:raw', 'raw.two', 'test.thing', '2', '', now())")

    result = chain.verify()
    chain.record_check(result)

    count = AuditEvent.objects.count()
    assert before > 0 and count == before + 1 + 5 + 2
    assert result.ok, result
    assert (result.count, result.head_seq) == (count, count)
    assert ChainHead.objects.get().seq == count  # moved by the triggers, which run as the owner
    assert ChainCheck.objects.latest_failure() is None and ChainCheck.objects.count() == 1


def test_the_chain_triggers_run_as_the_owner_of_the_head_whatever_the_callers_search_path(as_app_role):
    with connection.cursor() as cursor:
        cursor.execute("SELECT p.proname, p.prosecdef, p.proconfig, p.proowner = c.relowner FROM pg_proc AS p, "
                       "pg_class AS c WHERE p.proname IN ('audit_event_chain', 'audit_event_chain_head') "
                       "AND c.oid = 'audit_chainhead'::regclass ORDER BY p.proname")
        functions = cursor.fetchall()
        # A look-alike head the caller could put first on its search_path.
        cursor.execute("CREATE TEMP TABLE audit_chainhead (id bigint, seq bigint, hash varchar(64))")
        cursor.execute("INSERT INTO pg_temp.audit_chainhead VALUES (1, 1000, repeat('f', 64))")
        cursor.execute("SET search_path = pg_temp, public")  # pg_temp first, as it is for tables anyway
    record_many(actor=None, actor_name="system:test", object_type="test.thing",
                entries=[Entry(action="thing.done", object_id=str(n)) for n in range(3)])
    with connection.cursor() as cursor:
        cursor.execute("SELECT seq FROM pg_temp.audit_chainhead")
        look_alike = cursor.fetchone()[0]
        # So the ORM reads the real table again (a temporary table shadows it whatever the search_path).
        cursor.execute("DROP TABLE pg_temp.audit_chainhead")

    assert [(name, definer, owner) for name, definer, _, owner in functions] == [
        ("audit_event_chain", True, True), ("audit_event_chain_head", True, True)]
    # The head's function fixes only its search_path; the chain's also keeps its link check an index lookup.
    assert [config for _, _, config, _ in functions] == [["search_path=public, pg_temp", "enable_seqscan=off"],
                                                         ["search_path=public, pg_temp"]]
    assert ChainHead.objects.get().seq == 3 and look_alike == 1000  # the real head moved, not the look-alike
    assert chain.verify().ok


def test_the_application_role_may_change_and_delete_in_ordinary_tables(as_app_role):
    group = Group.objects.create(name="reviewers of the night")
    version = make_policy()

    Group.objects.filter(pk=group.pk).update(name="night reviewers")
    Policy.objects.filter(pk=version.policy_id).update(description="changed by the application's role")
    group.delete()

    assert not Group.objects.filter(pk=group.pk).exists()
    assert Policy.objects.get(pk=version.policy_id).description == "changed by the application's role"


TABLE = AuditEvent._meta.db_table
REFUSED = {
    "update an event": f"UPDATE {TABLE} SET action = 'rewritten'",
    "delete an event": f"DELETE FROM {TABLE}",
    "truncate the trail": f"TRUNCATE {TABLE}",
    "truncate the trail, cascading": f"TRUNCATE {TABLE} CASCADE",
    "move the chain head": "UPDATE audit_chainhead SET seq = 0, hash = repeat('0', 64)",
    "remove the chain head": "DELETE FROM audit_chainhead",
    "truncate the chain head": "TRUNCATE audit_chainhead",
    "rewrite a verification": f"UPDATE {ChainCheck._meta.db_table} SET ok = true",
    "remove a verification": f"DELETE FROM {ChainCheck._meta.db_table}",
    "disable the append-only trigger": f"ALTER TABLE {TABLE} DISABLE TRIGGER audit_event_append_only",
    "disable every trigger": f"ALTER TABLE {TABLE} DISABLE TRIGGER ALL",
    "drop the append-only trigger": f"DROP TRIGGER audit_event_append_only ON {TABLE}",
    "drop the chain trigger": f"DROP TRIGGER audit_event_chain ON {TABLE}",
    "create a trigger": f"CREATE TRIGGER audit_event_forger BEFORE INSERT ON {TABLE} "
                        "FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()",
    "replace the chain function": "CREATE OR REPLACE FUNCTION audit_event_chain() RETURNS trigger "
                                  "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
    "drop the trail": f"DROP TABLE {TABLE}",
    "set replica mode (no triggers fire)": "SET session_replication_role = replica",
    "rewrite the schema's history": "DELETE FROM django_migrations",
}


@pytest.mark.parametrize("statement", REFUSED.values(), ids=REFUSED.keys())
def test_postgresql_refuses_the_application_role_whatever_could_rewrite_the_trail(as_app_role, statement):
    record_many(actor=None, actor_name="system:test", object_type="test.thing",
                entries=[Entry(action="thing.done", object_id=str(n)) for n in range(3)])
    ChainCheck.objects.create(ok=True, count=3)

    cause = _refused(statement)

    assert isinstance(cause, errors.InsufficientPrivilege), cause  # SQLSTATE 42501
    assert AuditEvent.objects.count() == 3
    assert chain.verify().ok


def test_migrate_grants_new_tables_again_and_takes_back_what_the_trail_must_not_allow(app_role, settings):
    settings.DATABASE_APP_ROLE = ROLE
    with connection.cursor() as cursor:
        # What a later migration adds, and privileges someone gave the role by hand.
        cursor.execute("CREATE TABLE test_later_table (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY)")
        cursor.execute(f"GRANT UPDATE, DELETE, TRUNCATE, TRIGGER ON {TABLE} TO {ROLE}")
    try:
        call_command("migrate", verbosity=0)
        call_command("migrate", verbosity=0)  # and again: the same grants

        assert _privileges("test_later_table") == {"SELECT", "INSERT", "UPDATE", "DELETE"}
        assert _privileges(TABLE) == {"SELECT", "INSERT"}
        assert _privileges(ChainHead._meta.db_table) == {"SELECT"}
        assert _privileges(ChainCheck._meta.db_table) == {"SELECT", "INSERT"}
        assert _privileges("django_migrations") == {"SELECT"}
        assert _privileges(Policy._meta.db_table) == {"SELECT", "INSERT", "UPDATE", "DELETE"}
        with connected_as(app_role), connection.cursor() as cursor:
            cursor.execute("INSERT INTO test_later_table DEFAULT VALUES RETURNING id")  # its sequence too
            assert cursor.fetchone()[0] == 1
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE test_later_table")


def test_migrate_connects_as_the_owner_and_gives_the_connection_back(app_role, settings):
    owner = connection.settings_dict["USER"]
    settings.DATABASE_OWNER = {"USER": owner, "PASSWORD": connection.settings_dict["PASSWORD"]}
    settings.DATABASE_APP_ROLE = ROLE
    seen = []

    def who_migrated(sender: Any, **kwargs: Any) -> None:
        seen.append(_current_user())

    post_migrate.connect(who_migrated, dispatch_uid="test.who_migrated")
    try:
        with connected_as(app_role):
            call_command("migrate", verbosity=0)
            after = _current_user()
    finally:
        post_migrate.disconnect(dispatch_uid="test.who_migrated")

    assert seen and set(seen) == {owner}
    assert after == ROLE
    assert _privileges(TABLE) == {"SELECT", "INSERT"}


@pytest.mark.django_db
def test_a_role_that_could_rewrite_the_trail_is_refused_loudly():
    password = secrets.token_urlsafe(24)
    _create_role(password)
    owner = connection.settings_dict["USER"]
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE test_owned_by_the_role (id int); ALTER TABLE test_owned_by_the_role "
                       f"OWNER TO {ROLE}")

    with pytest.raises(ImproperlyConfigured, match=r"owns \(or is a member of a role that owns\) "
                                                   r"test_owned_by_the_role"):
        grant_app_role(ROLE)
    with pytest.raises(ImproperlyConfigured, match="is (a superuser|the owner): it could rewrite the audit trail"):
        grant_app_role(owner)
    with pytest.raises(ImproperlyConfigured, match="'nobody_of_that_name' does not exist"):
        grant_app_role("nobody_of_that_name")


@pytest.mark.parametrize("link", ["made-up seq", "real seq, made-up hash"])
def test_a_writer_cannot_link_its_events_to_a_made_up_chain_head(as_app_role, link):
    record(actor=None, actor_name="system:test", action="note.added", obj=make_policy())
    head = ChainHead.objects.get()
    seq, digest = (head.seq + 50, head.hash) if link == "made-up seq" else (head.seq, "f" * 64)
    with pytest.raises(DatabaseError) as refusal, transaction.atomic(), connection.cursor() as cursor:
        # The trigger keeps the transaction's last link in this setting, which any session may set.
        cursor.execute("SELECT set_config('audit.chain_head', pg_current_xact_id()::text || %s, true)",
                       [f":{seq}:{digest}"])
        cursor.execute(f"INSERT INTO {TABLE} (actor_name, action, object_type, object_id, object_repr, "
                       "created_at) VALUES ('system:forger', 'forged.link', 'test.thing', '1', '', now())")

    assert isinstance(refusal.value.__cause__, errors.InsufficientPrivilege)
    assert "is not an event" in str(refusal.value)
    assert not AuditEvent.objects.filter(action="forged.link").exists()
    assert chain.verify().ok

