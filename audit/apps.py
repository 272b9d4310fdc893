"""The audit app: the append-only AuditEvent model and its writer; its `ready` has every `migrate` grant
the application's database role its tables (audit.database_roles)."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        # Imported here, once the app registry is ready (models load with this module).
        from audit.database_roles import grant_after_migrate  # noqa: PLC0415

        # Sent once per app after every migrate: this app's is enough, and every table exists by then.
        post_migrate.connect(grant_after_migrate, sender=self, dispatch_uid="audit.database_roles.grant")
