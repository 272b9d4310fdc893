"""The privacy app's job: apply the retention rules (the API's schedule runs it, as
`api.jobs.scheduled_retention`; this app sits below the schedule and knows nothing of it)."""

from __future__ import annotations

import logging

from privacy import retention

log = logging.getLogger(__name__)


def apply_retention() -> int:
    """Redact whatever the rules say is due; how many items (per kind) were redacted."""
    outcomes = retention.apply()
    for outcome in outcomes:
        if outcome.items:
            log.info("retention: %s of %d items of %s (older than %d days)", outcome.kind, outcome.items,
                     outcome.scope, outcome.days)
    return sum(outcome.items for outcome in outcomes)
