"""The audit trail: the append-only `AuditEvent` model and its one writer (`audit.writer`).

The bottom Django layer: every app that changes something records it here, in the same transaction.
"""
