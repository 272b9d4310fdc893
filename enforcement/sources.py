"""Where the information behind a decision came from (DSA Art. 17(3)(b)): the `source_type` a platform
sends in an item's metadata, read into the Transparency Database's source types."""

from __future__ import annotations

from typing import Any

from enforcement.models import SourceType

# Item metadata `source_type` values a platform may send (ours, or the database's own names).
SOURCE_ALIASES = {
    "notice": SourceType.ARTICLE_16, "article_16": SourceType.ARTICLE_16, "SOURCE_ARTICLE_16": SourceType.ARTICLE_16,
    "trusted_flagger": SourceType.TRUSTED_FLAGGER, "SOURCE_TRUSTED_FLAGGER": SourceType.TRUSTED_FLAGGER,
    "other_notification": SourceType.OTHER_NOTIFICATION,
    "SOURCE_TYPE_OTHER_NOTIFICATION": SourceType.OTHER_NOTIFICATION,
    "voluntary": SourceType.VOLUNTARY, "own_initiative": SourceType.VOLUNTARY, "SOURCE_VOLUNTARY": SourceType.VOLUNTARY,
}


def source_of(item: Any) -> str:
    metadata = item.metadata if isinstance(item.metadata, dict) else {}
    return SOURCE_ALIASES.get(str(metadata.get("source_type", "")).strip(), SourceType.VOLUNTARY)
