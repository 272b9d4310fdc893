"""Live updates: the one place that names channel-layer groups and message types, and renders the HTML
the consumers push (from the same `_name.html` partials the pages include).

Messages on the layer carry ids and names only; each consumer renders for its own viewer and filters,
so what a page receives is what it would show after a reload. The review app's writes call these
functions on commit (`on_commit`); the reasoner's stored batches arrive as `console.signals.verdicts_stored`
(`on_verdicts_stored`, connected in ConsoleConfig.ready).

    group "queue"          every open queue page and item page
      verdicts.stored      {"ids": [classification ids]}         the reasoner stored a batch
      items.created        {"items": [item ids]}                 new items entered the pipeline
      claim.changed        {"item_id", "user", "since"}          taken ("user" set) or given back ("")
      review.decided       {"ids", "items", "user", "decision"}  reviews stored
    group "item-<id>"      the open pages of one item
      comment.added        {"item_id", "comment_id"}
      presence.join/here/leave  {"channel", "user"}              who else is looking (consumers only)
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from channels.layers import get_channel_layer
from django.db import transaction
from django.template.loader import render_to_string
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html_join

from console import itempage, queues
from console.models import Item

QUEUE_GROUP = "queue"


def item_group(item_id: int) -> str:
    return f"item-{int(item_id)}"


_sender: tuple[int, asyncio.AbstractEventLoop] | None = None
_sender_lock = threading.Lock()


def _send(group: str, message: dict[str, Any]) -> None:
    """Send through one event loop kept running in a daemon thread of this process (requests, services
    and the reasoner worker alike).

    async_to_sync starts a fresh loop per call, and channels-redis keeps its connections per loop, so
    each send would also open a Redis connection: about 5 ms of mostly CPU a batch, against 0.4 ms
    here, which a worker storing 30+ batches a second on two cores notices.
    """
    global _sender
    with _sender_lock:
        if _sender is None or _sender[0] != os.getpid():  # a forked child starts its own
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="broadcast-sender", daemon=True).start()
            _sender = (os.getpid(), loop)
        loop = _sender[1]
    coroutine = get_channel_layer().group_send(group, message)
    asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=5)


def group_send(group: str, message: dict[str, Any]) -> None:
    """Send `message` to a group that a layer above names for itself (the evaluation workbench's run
    pages), through this module's one sender loop."""
    _send(group, message)


def on_commit(send: Callable[..., None], **kwargs: Any) -> None:
    """Call `send` (a broadcast of this module) with `kwargs` once the current transaction commits; a
    failure is logged, never raised (the change is stored; a page that missed it catches up on reload)."""
    transaction.on_commit(lambda: send(**kwargs), robust=True)


def on_verdicts_stored(sender: Any, classification_ids: list[int], **kwargs: Any) -> None:
    """Receiver of `console.signals.verdicts_stored` (connected in ConsoleConfig.ready)."""
    verdicts_stored(classification_ids)


def verdicts_stored(classification_ids: list[int]) -> None:
    """Tell open queue pages that these classifications changed.

    One message per stored batch, carrying only ids: the consumer loads and renders the rows, so a
    batch of 64 verdicts costs the worker one Redis round trip.
    """
    if not classification_ids:
        return
    _send(QUEUE_GROUP, {"type": "verdicts.stored", "ids": [int(pk) for pk in classification_ids]})


def items_created(item_ids: list[int]) -> None:
    """New items: queue pages show how much is on its way, and rows for any that need people at once."""
    if item_ids:
        _send(QUEUE_GROUP, {"type": "items.created", "items": [int(pk) for pk in item_ids]})


def claim_changed(*, item_id: int, username: str, since: str) -> None:
    """A moderator took an item (`username` set) or gave it back (`username` empty)."""
    _send(QUEUE_GROUP, {"type": "claim.changed", "item_id": int(item_id), "user": username, "since": since})


def review_decided(*, classification_ids: list[int], item_ids: list[int], username: str, decision: str) -> None:
    queues.forget_counts()  # this process's queue pages show the new depth at once
    _send(QUEUE_GROUP, {"type": "review.decided", "ids": [int(pk) for pk in classification_ids],
                        "items": [int(pk) for pk in item_ids], "user": username, "decision": decision})


def comment_added(*, item_id: int, comment_id: int) -> None:
    _send(item_group(item_id), {"type": "comment.added", "item_id": int(item_id), "comment_id": int(comment_id)})


# --- HTML for the consumers (sync: call through database_sync_to_async where they read the database) ---


def queue_rows_html(ids: list[int], filters: Any, viewer: Any) -> str:
    """The rows among `ids` that now await review and match an open queue page's filters, appended to
    its "arrived" section; "" when none do.

    Table rows travel in a frame of their own: the browser parses a frame as one fragment, and a
    fragment that starts with anything but table markup drops the <tbody> and <tr> tags after it.
    """
    rows = queues.rows_by_id(ids, filters)
    if not rows:
        return ""
    queues.attach_claims(rows, queues.live_claims([row.item_id for row in rows]), viewer)
    body = "".join(render_to_string("console/_queue_row.html", {"row": row, "fresh": True}) for row in rows)
    return f'<tbody hx-swap-oob="beforeend:#queue-arrivals">{body}</tbody>'


def queue_counts_html(filters: Any, event: Any) -> str:
    """The queue tabs' counts as they stand after `event` (see queues.counts_after)."""
    counts, in_flight = queues.counts_after(event)
    return counts_html(counts, in_flight, filters)


def counts_html(counts: dict[str, int], in_flight: int, filters: Any) -> str:
    return render_to_string("console/_queue_counts.html", {"tabs": queues.tabs(counts, filters),
                                                            "in_flight": in_flight})


def removed_rows_html(ids: list[int]) -> str:
    return format_html_join("", '<tr id="row-{}" hx-swap-oob="delete"></tr>', ((pk,) for pk in ids))


def claim_badges_html(*, item_id: int, username: str, since: str, viewer: Any) -> str:
    """The claim cell of every queue row of the item (several policies: several rows)."""
    moment: datetime | None = parse_datetime(since) if since else None
    badge = render_to_string("console/_claim_badge.html", {
        "item_id": item_id, "name": username, "since": moment,
        "mine": bool(username) and username == viewer.get_username(),
    })
    return badge.replace("<span ", f'<span hx-swap-oob="outerHTML:.claim-item-{int(item_id)}" ', 1)


def item_parts_html(item_id: int, viewer: Any, current_id: int | None, parts: tuple[str, ...]) -> str:
    """Parts of an open item page (see itempage.PARTS), rendered afresh for its viewer."""
    item = Item.objects.filter(pk=item_id).first()
    if item is None:
        return ""
    context = itempage.item_context(item, viewer, current_id)
    return "".join(render_to_string(f"console/_{part}.html", context) for part in parts)


def viewers_html(names: list[str]) -> str:
    return render_to_string("console/_viewers.html", {"names": sorted(set(names))})


def toast_html(text: str) -> str:
    return render_to_string("console/_toast.html", {"text": text})


DECISION_WORDS = {"approve": "approved", "override": "overrode", "escalate": "escalated"}


def decided_text(username: str, decision: str, viewer: Any) -> str:
    who = "You" if username == viewer.get_username() else username
    return f"{who} {DECISION_WORDS.get(decision, decision)} a verdict on this item"

