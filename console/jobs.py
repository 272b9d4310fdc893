"""RQ jobs: thin wrappers that call a service. The reasoner itself is not a job (see
console.reasoner.Worker): a model is loaded once per process, not once per forked job."""

from __future__ import annotations

from console import reasoner


def sweep_stale_job() -> int:
    """Re-queue classifications whose worker died (schedule it, e.g. every minute, if no worker runs
    the sweep itself; workers also sweep every 30 s)."""
    return reasoner.sweep_stale()
