"""The benchmarks' own databases, on the same PostgreSQL server as the console's, never its data.

The server is reached as Django reaches it: through DATABASE_URL's host and port, or the Unix socket
that the embedded PostgreSQL gives in the URL's `?host=` (which dj-database-url keeps in OPTIONS).
"""

from __future__ import annotations

import psycopg
from django.conf import settings
from django.core.management import call_command
from django.db import connections

from audit.database_roles import connected_as


def admin_connection() -> psycopg.Connection:
    """An autocommit connection to the server's `postgres` database, for CREATE and DROP DATABASE: as the
    owner in DATABASE_OWNER_URL when one is set (the application's role may not create databases)."""
    db = {**settings.DATABASES["default"], **settings.DATABASE_OWNER}
    host = (db.get("OPTIONS") or {}).get("host") or db.get("HOST") or None
    return psycopg.connect(dbname="postgres", user=db.get("USER") or None, password=db.get("PASSWORD") or None,
                           host=host, port=db.get("PORT") or None, autocommit=True)


def use_database(name: str, *, recreate: bool) -> None:
    """Point this process at database `name` (dropped and made afresh when `recreate`, made when missing)
    and migrate it (as the owner, which then grants the application's role its tables)."""
    connections.close_all()
    with admin_connection() as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and recreate:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        if not exists or recreate:
            admin.execute(f'CREATE DATABASE "{name}"')
    settings.DATABASES["default"]["NAME"] = name
    connections["default"].settings_dict["NAME"] = name
    call_command("migrate", verbosity=0)


def drop_database(name: str) -> None:
    connections.close_all()
    with admin_connection() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def vacuum_analyze() -> None:
    """VACUUM ANALYZE the scratch database after a bulk fill, as the owner: as the application's role
    VACUUM skips, with a warning only, every table it does not own, and the planner then plans on the
    empty tables' statistics (a benchmark measuring that would measure nothing real)."""
    connections["default"].close()
    with connected_as(settings.DATABASE_OWNER), connections["default"].cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
