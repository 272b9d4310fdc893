"""The reasoner's wake-up: the database holds the work (classifications with status "queued"), Redis
carries a wake-up, so a reasoner worker sleeping between batches starts at once instead of polling."""

from __future__ import annotations

import django_rq

WAKE_KEY = "console:reasoner:wake"


def wake_reasoner() -> None:
    connection = django_rq.get_connection("reasoner")
    # A short list is enough: one pending wake-up wakes a worker, which then drains everything queued.
    pipe = connection.pipeline()
    pipe.lpush(WAKE_KEY, 1)
    pipe.ltrim(WAKE_KEY, 0, 7)
    pipe.execute()
