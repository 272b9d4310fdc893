"""The refusals of the review actions (claims, decisions, comments, wellness settings). Each message is
written for the moderator and shown as is."""

from __future__ import annotations

from typing import Any


class ReviewError(Exception):
    """A refused review action."""


class DecisionConflict(ReviewError):
    """Someone decided (or escalated) the item after the moderator opened it: nothing was saved."""


class ClaimConflict(ReviewError):
    """Another moderator holds the item."""

    def __init__(self, claim: Any) -> None:
        name = claim.user.get_username()
        super().__init__(
            f"{name} is reviewing this item (since {claim.claimed_at:%H:%M}); you can read it, but not decide it"
        )
        self.claim = claim
