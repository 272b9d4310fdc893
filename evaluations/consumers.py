"""The live run page: a WebSocket consumer that joins the run's group (evaluations.live) and, on each
`run.progress` message, pushes the progress bar re-rendered (and, once the run is over, its metrics
block), as HTML that htmx's ws extension swaps in by id. The browser sends nothing."""

from __future__ import annotations

from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from accounts.roles import Role, has_role
from evaluations import live, runpage
from evaluations.models import EvaluationRun, RunKind, RunStatus


def _allowed(user: Any) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False)
                and has_role(user, Role.POLICY_WRITER, Role.ADMIN))


def _frames(run_id: int, *, with_metrics: bool) -> tuple[list[str], bool]:
    """The HTML to push for the run now, and whether the run is over (None for a run that is gone)."""
    run = (EvaluationRun.objects.filter(pk=run_id, kind=RunKind.LABELED)
           .select_related("labeled_set", "policy_version").first())
    if run is None:
        return [], True
    over = run.status != RunStatus.RUNNING
    frames = [runpage.progress_html(run)]
    if over and with_metrics:
        frames.append(runpage.metrics_html(run))
        frames.append('<div id="run-cancel"></div>')  # nothing left to cancel
    return frames, over


def _exists(run_id: int) -> bool:
    return EvaluationRun.objects.filter(pk=run_id, kind=RunKind.LABELED).exists()


class RunConsumer(AsyncWebsocketConsumer):
    """/ws/evaluations/runs/<id>/: the run's progress, pushed whenever results of it are stored."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        self.run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        if not await database_sync_to_async(_allowed)(user) or not await database_sync_to_async(_exists)(self.run_id):
            await self.close()
            return
        self.group = live.run_group(self.run_id)
        self.finished_shown = False
        await self.channel_layer.group_add(self.group, self.channel_name)
        self.joined = True
        await self.accept()
        # Results stored between the page's render and this connection would otherwise show only on the
        # next message (or never, if they were the last): catch up at once.
        await self.run_progress({"type": "run.progress", "run": self.run_id})

    async def disconnect(self, code: int) -> None:
        if getattr(self, "joined", False):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        return  # the page only listens

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Any other message type on the group is not this page's business (channels would close the socket).
        if getattr(self, get_handler_name(message), None) is None:
            return
        await super().dispatch(message)

    async def run_progress(self, event: dict[str, Any]) -> None:
        frames, over = await database_sync_to_async(_frames)(self.run_id, with_metrics=not self.finished_shown)
        for html in frames:
            await self.send(text_data=html)
        self.finished_shown = self.finished_shown or over
