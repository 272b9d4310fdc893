"""Live progress of evaluation runs: the group an open run page joins, and the message sent to it
whenever results of the run are stored (evaluations.consumers renders it into the progress bar)."""

from __future__ import annotations

import logging

from console import broadcast

log = logging.getLogger(__name__)


def run_group(run_id: int) -> str:
    return f"evaluation-run-{int(run_id)}"


def send_progress(run_id: int) -> None:
    """Tell the run's open pages to redraw its progress; a failure is logged (a page catches up on reload)."""
    try:
        broadcast.group_send(run_group(run_id), {"type": "run.progress", "run": int(run_id)})
    except Exception:
        log.warning("evaluation run %s: progress could not be pushed", run_id, exc_info=True)
