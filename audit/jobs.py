"""The audit app's job: verify the hash chain and keep the result (the API's schedule runs it hourly, as
`api.jobs.scheduled_audit_verify`; the audit app is the lowest layer and knows nothing of the schedule)."""

from __future__ import annotations

import logging

from audit import chain

log = logging.getLogger(__name__)


def verify_chain() -> bool:
    """Verify the whole chain and record the result, which raises or clears the admins' alarm; whether
    the chain is intact."""
    result = chain.verify()
    chain.record_check(result)
    if result.ok:
        log.info("%s", result)
    else:
        log.error("%s", result)
    return result.ok
