"""Record every event in the timeline of the customer, group or member it concerns.

This is what a client manager or an ops admin reads to learn "what happened to this customer".
One entry per (inbox event, subject, kind): the unique constraint makes retries and replays
write nothing twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.timeline.record import add_entries
from scrm.adapters.wecom import events as ev
from scrm.kernel.dispatch import Router
from scrm.kernel.events import Internal, InternalEvent, stored_form

router = Router("timeline")

Subject = tuple[str, str]


def subjects_of(event: Any) -> list[Subject]:
    """Who an event is about: customers, groups, members (pure; the unknown case is handled)."""
    if isinstance(event, ev.ExternalChatUpdate):
        customers = [m for m in event.mem_change_list if m.startswith(("wm", "wo"))]  # external userids
        return [("group", event.chat_id)] + [("customer", m) for m in customers]
    if isinstance(event, (ev.ExternalChatCreate, ev.ExternalChatDismiss)):
        return [("group", event.chat_id)]
    external = getattr(event, "external_user_id", None)
    if isinstance(external, str) and external:
        return [("customer", external)]
    if isinstance(event, (ev.ExternalTagCreate, ev.ExternalTagUpdate, ev.ExternalTagDelete, ev.ExternalTagShuffle)):
        return [("tag", event.id or "*")]
    if isinstance(event, Internal | InternalEvent):
        # Any feature's internal event, typed or not: its stored payload names the subject.
        sub = stored_form(event).payload.get("subject")
        if isinstance(sub, list) and len(sub) == 2:
            return [(str(sub[0]), str(sub[1]))]
        return []
    member = getattr(event, "from_user_name", "")
    if member and member != "sys":
        return [("member", member)]
    return []


def detail_of(event: Any) -> dict[str, Any]:
    if isinstance(event, Internal | InternalEvent):
        return dict(stored_form(event).payload)
    data: dict[str, Any] = event.model_dump(mode="json", exclude={"to_user_name"})
    return data


def event_time(event: Any, fallback: datetime) -> datetime:
    ts = getattr(event, "create_time", None)
    if isinstance(ts, int) and ts > 0:
        return datetime.fromtimestamp(ts, UTC)
    return getattr(event, "at", None) or fallback


@router.on()
async def record(event: Any, session: AsyncSession, inbox_id: int, received_at: datetime) -> None:
    rows = [
        {
            "subject_type": kind,
            "subject_id": ident,
            "at": event_time(event, received_at),
            "kind": event.kind,
            "detail": detail_of(event),
            "inbox_event_id": inbox_id,
        }
        for kind, ident in subjects_of(event)
    ]
    await add_entries(session, rows)
