"""Live appeals queue: the group an open appeals page joins, and the messages sent to it when an appeal
is filed or decided (enforcement.consumers renders them into the page's rows).

    group "appeals"
      appeal.filed     {"appeal": id}   a new appeal: its row is added
      appeal.decided   {"appeal": id}   decided: its open row goes
"""

from __future__ import annotations

import logging

from console import broadcast

log = logging.getLogger(__name__)

APPEALS_GROUP = "appeals"


def _send(kind: str, appeal_id: int) -> None:
    try:
        broadcast.group_send(APPEALS_GROUP, {"type": kind, "appeal": int(appeal_id)})
    except Exception:  # the appeal is stored; an open page shows it on reload
        log.warning("appeal %s: %s could not be pushed", appeal_id, kind, exc_info=True)


def appeal_filed(appeal_id: int) -> None:
    _send("appeal.filed", appeal_id)


def appeal_decided(appeal_id: int) -> None:
    _send("appeal.decided", appeal_id)
