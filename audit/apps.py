"""The audit app: the append-only AuditEvent model and its writer."""

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"
