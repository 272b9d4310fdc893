"""The two database roles (README: Two database roles): the owner, which owns every table and function and
runs `migrate`, and the application's role (DATABASE_URL's user), which serves and works and may never
rewrite the audit trail.

PostgreSQL itself enforces what the application's role may not do: only an owner may ALTER TABLE (so
DISABLE TRIGGER), DROP or CREATE TRIGGER, and TRUNCATE or UPDATE needs a privilege `grant_app_role` never
gives on the audit tables; SET session_replication_role (which silences every trigger) needs a superuser.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.migrations.recorder import MigrationRecorder
from django.db.models import Model

from audit.models import AuditEvent, ChainCheck, ChainHead

ORDINARY_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"  # on every other table of the schema

# The tables on which the application's role gets less than ORDINARY_PRIVILEGES.
RESTRICTED_PRIVILEGES: dict[type[Model], str] = {
    AuditEvent: "SELECT, INSERT",  # append-only, and never emptied
    ChainHead: "SELECT",  # moved by the chain triggers alone, which run as the owner (migration 0003)
    ChainCheck: "SELECT, INSERT",  # a verification's result stays as it was found
    MigrationRecorder.Migration: "SELECT",  # the schema's history: `migrate` writes it, as the owner
}

# What makes the role unfit: what it owns, or owns through a role it belongs to, it may alter at will (the
# chain's trigger functions included).
_FITNESS_SQL = """
SELECT current_schema(), current_user, r.rolsuper, (
    SELECT string_agg(owned.name, ', ' ORDER BY owned.name) FROM (
        SELECT c.relname::text AS name, c.relowner AS owner FROM pg_class AS c
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
        UNION ALL
        SELECT p.proname || '()', p.proowner FROM pg_proc AS p
        JOIN pg_namespace AS n ON n.oid = p.pronamespace WHERE n.nspname = current_schema()
    ) AS owned WHERE pg_has_role(r.oid, owned.owner, 'MEMBER'))
FROM pg_roles AS r WHERE r.rolname = %s
"""


@contextmanager
def connected_as(credentials: Mapping[str, Any], *, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Connect `using` with other credentials (some of USER, PASSWORD, HOST, PORT, OPTIONS) until the block
    ends. The database stays the one the connection names (in tests, the test database)."""
    connection = connections[using]
    if connection.in_atomic_block:
        raise RuntimeError("cannot change a connection's role inside a transaction")
    saved = {key: connection.settings_dict[key] for key in credentials}
    connection.close()
    connection.settings_dict.update(credentials)
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)


def grant_app_role(role: str, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Give `role` what the console needs on every table, sequence and function of the current schema, and
    on the RESTRICTED_PRIVILEGES tables no more than they say. Run as the owner; idempotent (the role's
    table privileges are revoked and granted again, in one transaction, so it never sees fewer)."""
    connection = connections[using]
    quote = connection.ops.quote_name
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute(_FITNESS_SQL, [role])
        row = cursor.fetchone()
        if row is None:
            raise ImproperlyConfigured(f"the application's database role {role!r} does not exist: create it "
                                       "(CREATE ROLE ... LOGIN PASSWORD ...; README: Two database roles)")
        schema, owner, superuser, owned = row
        if superuser or role == owner:
            raise ImproperlyConfigured(f"the application's database role {role!r} is "
                                       f"{'a superuser' if superuser else 'the owner'}: it could rewrite the "
                                       "audit trail. DATABASE_URL must name a role of its own")
        if owned:
            raise ImproperlyConfigured(f"the application's database role {role!r} owns (or is a member of a role "
                                       f"that owns) {owned}: only the owner in DATABASE_OWNER_URL may")
        to, on_schema = quote(role), quote(schema)
        statements = [
            f"REVOKE ALL ON ALL TABLES IN SCHEMA {on_schema} FROM {to}",
            f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {on_schema} FROM {to}",
            f"GRANT USAGE ON SCHEMA {on_schema} TO {to}",
            f"GRANT {ORDINARY_PRIVILEGES} ON ALL TABLES IN SCHEMA {on_schema} TO {to}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {on_schema} TO {to}",
            f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {on_schema} TO {to}",
        ]
        for model, privileges in RESTRICTED_PRIVILEGES.items():
            table = quote(model._meta.db_table)
            statements += [f"REVOKE ALL ON {table} FROM {to}", f"GRANT {privileges} ON {table} TO {to}"]
        for statement in statements:
            cursor.execute(statement)


def grant_after_migrate(sender: Any, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    """post_migrate: the tables a migration added are the application's role's too, as the owner that
    migrated (the `migrate` command connects as DATABASE_OWNER_URL's role) grants them."""
    if settings.DATABASE_APP_ROLE and using == DEFAULT_DB_ALIAS:
        grant_app_role(settings.DATABASE_APP_ROLE, using=using)
