"""Comments: notes moderators leave on an item for each other, audited and shown live on its open pages."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from audit.writer import record
from console import broadcast
from console.errors import ReviewError
from console.models import Classification, Comment, Item


@transaction.atomic
def add_comment(*, user: Any, item_id: int, text: str, classification_id: int | None = None) -> Any:
    """A note on the item for the other moderators."""
    text = (text or "").strip()
    if not text:
        raise ReviewError("The comment is empty")
    if len(text) > 5000:
        raise ReviewError("A comment holds at most 5,000 characters")
    item = Item.objects.filter(pk=item_id).first()
    if item is None:
        raise ReviewError("No such item")
    if classification_id is not None and not Classification.objects.filter(pk=classification_id,
                                                                           item_id=item_id).exists():
        classification_id = None
    comment = Comment.objects.create(item=item, classification_id=classification_id, author=user, text=text)
    record(actor=user, action="item.commented", obj=item, after={"comment": comment.pk, "text": text[:300]})
    broadcast.on_commit(broadcast.comment_added, item_id=item_id, comment_id=comment.pk)
    return comment
