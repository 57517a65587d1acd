"""What other features may use of the tag feature: the catalog (names ↔ WeCom ids, creating
missing tags) and the tag tables."""

from __future__ import annotations

from .catalog import (
    TagApi,
    TagCatalogError,
    ensure,
    lookup,
    mark_group_deleted,
    mark_tags_deleted,
    names_of,
    refresh,
    resolve_ids,
    write_groups,
)
from .models import FollowTag, Tag, TagGroup

__all__ = ["FollowTag", "Tag", "TagApi", "TagCatalogError", "TagGroup", "ensure", "lookup", "mark_group_deleted",
           "mark_tags_deleted", "names_of", "refresh", "resolve_ids", "write_groups"]
