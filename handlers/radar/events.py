"""The internal events the radar owns (its ``Feature.events``)."""

from __future__ import annotations

from typing import ClassVar

from scrm.kernel.events import Internal, Scheduled


class RadarClickEvent(Internal):
    """A tracked link opened (``GET /r/{token}``).

    The click view writes its stored JSON directly (:func:`handlers.radar.http.click_event_json`,
    no model per click); the inbox parses it into this class.
    """

    KIND: ClassVar[str] = "radar.click"
    SOURCE: ClassVar[str] = "radar"

    material: str
    token_id: str = ""
    sender: str = ""
    occurrence: str | None = None
    customer: str | None = None  # None: an anonymous open (counted, nobody to tag or name)
    openid: str | None = None
    via: str = "token"  # token | oauth: how the customer was known
    subject: tuple[str, str] | None = None  # ("customer", id) when known: the timeline recorder reads it


class RadarDigest(Scheduled):
    """The daily digest of clicks that had no alert of their own (scheduler job ``radar:digest``)."""

    KIND: ClassVar[str] = "radar.digest"


EVENTS: tuple[type[Internal], ...] = (RadarClickEvent, RadarDigest)
