"""Statements of reasons for a period, in the Transparency Database's submission shape, in batches."""

from __future__ import annotations

from datetime import date
from typing import Any

from enforcement import transparency
from enforcement.models import Statement


class ExportError(ValueError):
    """Statements the database would refuse; the message names them."""


def statements_between(since: date, until: date | None = None) -> Any:
    """Current statements (not withdrawn) applied from `since` to `until` (inclusive), oldest first."""
    rows = Statement.objects.current().filter(application_date__gte=since)
    if until is not None:
        rows = rows.filter(application_date__lte=until)
    return rows.select_related("action").order_by("application_date", "id")


def submission_batches(since: date, until: date | None = None,
                       size: int = transparency.BATCH_SIZE) -> list[dict[str, Any]]:
    """The bodies to POST to /api/v1/statements, each with at most `size` statements. Refuses (naming
    them) statements the database's validation would refuse, so a batch is never half rejected."""
    payloads, refused = [], []
    for statement in statements_between(since, until).iterator(chunk_size=500):
        payload = transparency.submission(statement)
        found = transparency.problems(payload)
        if found:
            refused.append(f"{statement.puid}: {'; '.join(found)}")
        payloads.append(payload)
    if refused:
        raise ExportError("Statements the Transparency Database would refuse: " + " | ".join(refused[:20]))
    return list(transparency.batches(payloads, size))
