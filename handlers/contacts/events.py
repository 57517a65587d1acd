"""The internal events the contacts feature owns (its ``Feature.events``)."""

from __future__ import annotations

from typing import ClassVar

from scrm.kernel.events import Internal


class ChannelTagsDue(Internal):
    """Tag a new relation with its channel's tags once the missing ones exist in WeCom.

    Its own event so that creating tags (a WeCom call that may fail) retries, and dead-letters
    visibly, off the welcome's path.
    """

    KIND: ClassVar[str] = "contact.channel_tags"
    SOURCE: ClassVar[str] = "lifecycle"

    userid: str
    external_userid: str
    tags: tuple[str, ...]
    channel: str  # the 「联系我」state or 获客链接 channel the customer came through
    subject: tuple[str, str]  # ("customer", external_userid): the timeline recorder reads it


EVENTS: tuple[type[Internal], ...] = (ChannelTagsDue,)
