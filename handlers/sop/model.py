"""What the planner decides: a planned action or a skip with its reason."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, time
from typing import Literal

ActionKind = Literal["group", "private", "task", "tag", "moments"]
#: The target of a campaign's Moments post: one post per channel and day, not per customer.
MOMENT_TARGET = "moment"


def send_key(source: str, step: str, target: str, day: date) -> str:
    """``sop:{calendar|path}:{sop}:{step}:{target}:{date}``: every send happens once."""
    return f"sop:{source}:{step}:{target}:{day.isoformat()}"


def task_id_for(key: str) -> str:
    """WeCom card task ids are ≤128 bytes and single use: a digest of the occurrence key."""
    return "sop" + hashlib.sha1(key.encode()).hexdigest()[:29]


@dataclass(frozen=True)
class Planned:
    """One action for one target at one slot."""

    kind: ActionKind
    source: str  # "calendar:payroll-groups" | "path:payroll-wealth"
    step: str
    target: str  # chat_id (group) or external_userid
    sender: str  # group owner or the customer's manager
    day: date
    at: time
    material: str | None = None
    context: dict[str, str] = field(default_factory=dict)
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()
    allow_select: bool = True
    checks: tuple[str, ...] = ()  # suitability/consent lines for the message trail (product materials)
    script: str | None = None  # a task's suggested message, offered in the chat sidebar
    # A Moments post: the audience's (customer, manager) pairs; the managers are its senders.
    audience: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    visible_tags: tuple[str, ...] = ()  # a Moments post: only customers with one of these see it

    @property
    def key(self) -> str:
        suffix = ":tag" if self.kind == "tag" else ""
        return send_key(self.source, self.step, self.target, self.day) + suffix


@dataclass(frozen=True)
class Skip:
    """A planned action that will not happen, and why (kept as an ``occurrence`` row)."""

    source: str
    step: str
    target: str
    day: date
    reason: str
    # A task card refused by the manager's daily limit: the executor carries it over instead.
    carry: Planned | None = field(default=None, compare=False)
    # (userid, text): a manager told why their task was not issued (suitability or consent).
    tell: tuple[str, str] | None = field(default=None, compare=False)
    # Who the target belongs to (the customer's manager), where the planner knows: a campaign's
    # funnel credits its skips to them.
    sender: str = field(default="", compare=False)

    @property
    def key(self) -> str:
        return send_key(self.source, self.step, self.target, self.day)


Decision = Planned | Skip
