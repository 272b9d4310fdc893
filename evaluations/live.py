"""Live progress of evaluation runs: the group an open run page joins, and the message sent to it
whenever results of the run are stored (evaluations.consumers renders it into the progress bar)."""

from __future__ import annotations

import logging
import threading
import time

from console import broadcast

log = logging.getLogger(__name__)

# A worker stores a batch every few milliseconds; an open page needs a redraw twice a second at most.
PUSH_EVERY_S = 0.5
_last_push: dict[int, float] = {}
_lock = threading.Lock()


def run_group(run_id: int) -> str:
    return f"evaluation-run-{int(run_id)}"


def send_progress(run_id: int, *, final: bool = False) -> None:
    """Tell the run's open pages to redraw its progress, at most every PUSH_EVERY_S per run and process
    (always when `final`: the run is over); a failure is logged (a page catches up on reload)."""
    now = time.monotonic()
    with _lock:
        if not final and now - _last_push.get(run_id, -PUSH_EVERY_S) < PUSH_EVERY_S:
            return
        _last_push[run_id] = now
        if len(_last_push) > 1000:  # runs come and go; keep the memo small
            _last_push.clear()
    try:
        broadcast.group_send(run_group(run_id), {"type": "run.progress", "run": int(run_id)})
    except Exception:
        log.warning("evaluation run %s: progress could not be pushed", run_id, exc_info=True)
