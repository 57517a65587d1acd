"""The internal events the succession feature owns (its ``Feature.events``)."""

from __future__ import annotations

from typing import ClassVar

from scrm.kernel.events import Internal, Scheduled

SOURCE = "succession"


class SuccessionSweep(Scheduled):
    """Hand over every customer and group WeCom lists as left by a member who resigned
    (``get_unassigned_list``, ``groupchat/list`` status 1): fired by the ``succession.sweep`` job,
    at start, and when a member is deleted (``userid``: who, for the logs)."""

    KIND: ClassVar[str] = "succession.sweep"
    SOURCE: ClassVar[str] = SOURCE

    userid: str | None = None


class SuccessionFollow(Scheduled):
    """Follow one batch: read what WeCom made of its calls and transfers, apply the final ones,
    tell the new managers; fired by a dated job per batch (``succession.follow:{batch}``)."""

    KIND: ClassVar[str] = "succession.follow"
    SOURCE: ClassVar[str] = SOURCE

    batch_id: str


class SuccessionMove(Internal):
    """An in-office move (在职继承, 管户调整) asked by an ops admin, a file or the CRM: customers
    of ``handover`` to ``takeover``. ``request_id`` names it: the same request twice is one move."""

    KIND: ClassVar[str] = "succession.move"
    SOURCE: ClassVar[str] = SOURCE

    request_id: str
    handover: str
    takeover: str
    external_userids: tuple[str, ...]
    message: str = ""  # the bank's handover message (transfer_success_msg); "" → the rules file's
    origin: str = "cli"  # cli | file | crm


EVENTS: tuple[type[Internal], ...] = (SuccessionSweep, SuccessionFollow, SuccessionMove)
