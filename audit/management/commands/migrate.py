"""Django's `migrate`, connected as the tables' owner (DATABASE_OWNER_URL) when one is set: the
application's role (DATABASE_URL) may not change the schema, and the owner then grants it its tables
(audit.database_roles). Every other command connects as the application's role.

An app's command of the same name replaces Django's own; `call_command("migrate")`, the test runner's
included, comes here too.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS

from audit.database_roles import connected_as


class Command(migrate.Command):
    help = migrate.Command.help + " Connects as DATABASE_OWNER_URL's role when that is set."

    def execute(self, *args: Any, **options: Any) -> str | None:
        # execute, not handle: the system checks that run first reach the database too.
        if not settings.DATABASE_OWNER or options.get("database", DEFAULT_DB_ALIAS) != DEFAULT_DB_ALIAS:
            return super().execute(*args, **options)
        with connected_as(settings.DATABASE_OWNER):
            return super().execute(*args, **options)
