"""The live appeals queue: a WebSocket consumer that joins the appeals group (enforcement.live) and pushes
a new appeal's row, rendered from the partial the page uses, or removes a decided one. The browser sends
nothing."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from console.permissions import can_review
from enforcement import appeal_pages, live


def _allowed(user: Any) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and can_review(user))


def _row_html(appeal_id: int) -> str:
    appeal = appeal_pages.queue_rows("open").filter(pk=appeal_id).first()
    if appeal is None:
        return ""
    row = render_to_string("enforcement/_appeal_row.html", {**appeal_pages.row_context(appeal), "fresh": True})
    # Table rows travel in a frame of their own (see console.broadcast.queue_rows_html).
    return f'<tbody hx-swap-oob="beforeend:#appeal-arrivals">{row}</tbody>'


class AppealQueueConsumer(AsyncWebsocketConsumer):
    """/ws/appeals/: rows of new appeals for the open queue page; decided ones leave it."""

    async def connect(self) -> None:
        if not await database_sync_to_async(_allowed)(self.scope.get("user")):
            await self.close()
            return
        await self.channel_layer.group_add(live.APPEALS_GROUP, self.channel_name)
        self.joined = True
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if getattr(self, "joined", False):
            await self.channel_layer.group_discard(live.APPEALS_GROUP, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        return  # the page only listens

    async def appeal_filed(self, event: dict[str, Any]) -> None:
        html = await database_sync_to_async(_row_html)(event["appeal"])
        if html:
            await self.send(text_data=html)

    async def appeal_decided(self, event: dict[str, Any]) -> None:
        await self.send(text_data=f'<tr id="appeal-{int(event["appeal"])}" hx-swap-oob="delete"></tr>')
