"""What the review side tells the layers above it, as plain Django signals sent once the change has
committed. The console never imports the reasoner or the API: they send or receive these instead.

    verdicts_stored(classification_ids)  the reasoner stored a batch of results (sent by `reasoner`;
                                         received by `console.broadcast` for open pages and by `api`
                                         for decision webhooks)
    item_decided(item_ids)               moderators reached a final decision on these items (sent by
                                         `console.decisions`; received by `api` for decision webhooks)
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.dispatch import Signal

log = logging.getLogger(__name__)

verdicts_stored = Signal()
item_decided = Signal()


def send(signal: Signal, sender: Any, **kwargs: Any) -> None:
    """Send now, to every receiver: one that raises is logged and does not stop the others (the
    change is stored; a page or a webhook that missed the news is a receiver's own concern)."""
    for receiver, result in signal.send_robust(sender, **kwargs):
        if isinstance(result, Exception):
            log.error("receiver %r of %s failed", receiver, kwargs, exc_info=result)


def send_on_commit(signal: Signal, sender: Any, **kwargs: Any) -> None:
    """Send once the current transaction commits (at once outside one); nothing if it rolls back."""
    transaction.on_commit(lambda: send(signal, sender, **kwargs), robust=True)
