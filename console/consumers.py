"""WebSocket consumers of the open queue and item pages: they turn layer messages (see broadcast.py) into
HTML that htmx's ws extension swaps in by id. Pages never poll; the client sends nothing."""

from __future__ import annotations

from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import QueryDict

from console import broadcast, permissions, queues
from console.itempage import PARTS
from console.models import Classification, Item


def _allowed(user: Any) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and permissions.can_review(user))


class _Page(AsyncWebsocketConsumer):
    """Shared handling: refuse anyone who may not review, ignore what the browser sends."""

    async def _admit(self) -> bool:
        self.user = self.scope.get("user")
        if not await database_sync_to_async(_allowed)(self.user):
            await self.close()
            return False
        return True

    def _query(self) -> QueryDict:
        return QueryDict(self.scope.get("query_string", b"").decode("latin-1"))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        return  # the pages only listen

    async def dispatch(self, message: dict[str, Any]) -> None:
        # A group carries messages for other kinds of pages too; one this page has no handler for is
        # not its business (channels would otherwise close the socket).
        if getattr(self, get_handler_name(message), None) is None:
            return
        await super().dispatch(message)

    async def _push(self, *frames: str) -> None:
        """Send HTML, one WebSocket frame per part (see broadcast.queue_rows_html for why)."""
        for html in frames:
            if html:
                await self.send(text_data=html)


class QueueConsumer(_Page):
    """/ws/queue/?<filters>: new rows (matching the page's filters), counts, claims and decisions."""

    async def connect(self) -> None:
        if not await self._admit():
            return
        self.filters, _ = queues.parse_filters(self._query())
        await self.channel_layer.group_add(broadcast.QUEUE_GROUP, self.channel_name)
        self.joined = True
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if getattr(self, "joined", False):
            await self.channel_layer.group_discard(broadcast.QUEUE_GROUP, self.channel_name)

    async def _rows_then_counts(self, ids: list[int], event: Any) -> None:
        # The rows go first: the counts cost a query over every awaiting row, the rows a few lookups.
        await self._push(await database_sync_to_async(broadcast.queue_rows_html)(ids, self.filters, self.user))
        await self._push(await database_sync_to_async(broadcast.queue_counts_html)(self.filters, event))

    async def verdicts_stored(self, event: dict[str, Any]) -> None:
        await self._rows_then_counts(event["ids"], ("verdicts", tuple(event["ids"])))

    async def items_created(self, event: dict[str, Any]) -> None:
        # A new item lands in a queue at once only when the first pass sent it straight to people.
        ids = await database_sync_to_async(_classification_ids_of)(event["items"])
        await self._rows_then_counts(ids, ("items", tuple(event["items"])))

    async def claim_changed(self, event: dict[str, Any]) -> None:
        await self._push(broadcast.claim_badges_html(item_id=event["item_id"], username=event["user"],
                                                     since=event["since"], viewer=self.user))

    async def review_decided(self, event: dict[str, Any]) -> None:
        await self._push(broadcast.removed_rows_html(event["ids"]))
        await self._push(await database_sync_to_async(broadcast.queue_counts_html)(
            self.filters, ("decided", tuple(event["ids"]))))


def _classification_ids_of(item_ids: list[int]) -> list[int]:
    return list(Classification.objects.awaiting_review().filter(item_id__in=item_ids).values_list("id", flat=True))


def _item_classification_ids(item_id: int) -> set[int] | None:
    if not Item.objects.filter(pk=item_id).exists():
        return None
    return set(Classification.objects.filter(item_id=item_id).values_list("id", flat=True))


class ItemConsumer(_Page):
    """/ws/items/<id>/?c=<classification>: the item's verdicts, claim, decisions, comments, and who else
    has it open (presence is kept by the consumers themselves: each greets the group on arrival, the
    others answer, and each says goodbye on leaving - nothing to store or expire)."""

    async def connect(self) -> None:
        if not await self._admit():
            return
        self.item_id = int(self.scope["url_route"]["kwargs"]["item_id"])
        ids = await database_sync_to_async(_item_classification_ids)(self.item_id)
        if ids is None:
            await self.close()
            return
        self.classification_ids = ids
        current = self._query().get("c", "")
        self.current_id = int(current) if current.isdigit() else None
        self.username = self.user.get_username()
        self.viewers: dict[str, str] = {}
        self.group = broadcast.item_group(self.item_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.channel_layer.group_add(broadcast.QUEUE_GROUP, self.channel_name)
        self.joined = True
        await self.accept()
        await self.channel_layer.group_send(
            self.group, {"type": "presence.join", "channel": self.channel_name, "user": self.username}
        )

    async def disconnect(self, code: int) -> None:
        if not getattr(self, "joined", False):
            return
        await self.channel_layer.group_send(
            self.group, {"type": "presence.leave", "channel": self.channel_name, "user": self.username}
        )
        await self.channel_layer.group_discard(self.group, self.channel_name)
        await self.channel_layer.group_discard(broadcast.QUEUE_GROUP, self.channel_name)

    # presence

    async def presence_join(self, event: dict[str, Any]) -> None:
        if event["channel"] == self.channel_name:
            return
        self.viewers[event["channel"]] = event["user"]
        await self.channel_layer.send(
            event["channel"], {"type": "presence.here", "channel": self.channel_name, "user": self.username}
        )
        await self._push_viewers()

    async def presence_here(self, event: dict[str, Any]) -> None:
        self.viewers[event["channel"]] = event["user"]
        await self._push_viewers()

    async def presence_leave(self, event: dict[str, Any]) -> None:
        if self.viewers.pop(event["channel"], None) is not None:
            await self._push_viewers()

    async def _push_viewers(self) -> None:
        names = [name for name in self.viewers.values() if name != self.username]
        await self._push(broadcast.viewers_html(names))

    # the item's changes

    async def _parts(self, *parts: str, toast: str = "") -> None:
        html = await database_sync_to_async(broadcast.item_parts_html)(self.item_id, self.user, self.current_id,
                                                                      parts)
        await self._push(html, broadcast.toast_html(toast) if toast else "")

    async def verdicts_stored(self, event: dict[str, Any]) -> None:
        if self.classification_ids & set(event["ids"]):
            await self._parts(*PARTS, toast="A new verdict arrived")

    async def claim_changed(self, event: dict[str, Any]) -> None:
        if event["item_id"] == self.item_id:
            await self._parts("claim", "actions")

    async def review_decided(self, event: dict[str, Any]) -> None:
        if self.item_id in event["items"]:
            await self._parts(*PARTS,
                              toast=broadcast.decided_text(event["user"], event["decision"], self.user))

    async def comment_added(self, event: dict[str, Any]) -> None:
        await self._parts("history")

