"""A welcome that missed its window: the manager is told at once to greet the customer by hand.

The outbox records a welcome ``failed`` when its 20-second code ran out before it went out (a
crash, a burst, WeCom refusing). This failure hook runs in the transaction that records the
failure, so the manager's task exists exactly once and only for a welcome that truly did not go
out (one that may have gone out is first asked again: a used code answers 41051, then it is
``sent``). The customer's timeline says so too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts import texts
from handlers.timeline.api import note
from scrm.kernel.config import Settings
from scrm.kernel.notify import tell_member
from scrm.kernel.outbox import FailureHook, Outbox
from scrm.playbook import Playbook
from scrm.playbook.quiet import quiet_until


def welcome_missed_hook(settings: Settings, playbook: Callable[[], Playbook | None]) -> FailureHook:
    """The hook for ``send_welcome_msg``; ``playbook`` gives the current one (quiet hours)."""

    async def tell_manager(outbox: Outbox, session: AsyncSession, row: Mapping[str, Any], error: str) -> None:
        about = row["payload"].get("about") or {}
        userid, ext = str(about.get("userid") or ""), str(about.get("external_userid") or "")
        if not userid or not ext:
            return  # queued before welcomes said whom they were for: nobody to tell
        now = outbox.clock.now()
        code = str(row["payload"]["body"].get("welcome_code", row["id"]))
        await note(session, None, "customer", ext, now, "welcome.failed",
                   {"userid": userid, "reason": error, "stage": "send"})
        customer = str(about.get("customer") or ext)
        await tell_member(session, outbox, settings, key=f"welcome_failed:{code}", userid=userid,
                          text=texts.welcome_failed(customer, texts.WINDOW_MISSED),
                          not_before=quiet_until(playbook(), now))

    return tell_manager
