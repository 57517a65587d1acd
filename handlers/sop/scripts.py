"""A task's suggested message (its *script*): which material it is, and whether the manager sent it.

A path step with ``task:`` may name a ``script:`` (a reminder has had one all along): the card
tells the manager that the words are ready, and the chat sidebar offers them first, rendered for
this customer, to send with one tap. The sidebar reports that send with the task's id; the first
one is kept on the task (``detail.script_sent_at``), which the SOP effect page counts as the
step *delivered* to that customer — for a card, the only sign that its words reached the chat.
"""

from __future__ import annotations

from datetime import datetime

from scrm.playbook import Playbook

from .models import SopTask

SCRIPT_SENT_AT = "script_sent_at"


def script_of(task: SopTask, playbook: Playbook) -> str | None:
    """The material offered as this task's message: the step's script, kept on the task when it
    was issued (so a later playbook edit does not change what an open card asks for), else the
    reminder's current ``script``."""
    kept = (task.detail or {}).get("script")
    if kept:
        return str(kept)
    kind, _, name = task.source.partition(":")
    reminder = playbook.reminders.get(name) if kind == "reminder" else None
    return reminder.script if reminder is not None and reminder.script else None


def script_sent_at(task: SopTask) -> str | None:
    """When the script first went into the chat (ISO time), or None."""
    value = (task.detail or {}).get(SCRIPT_SENT_AT)
    return str(value) if value else None


def record_script_sent(task: SopTask, at: datetime) -> bool:
    """Keep the first send of the task's script on the (session-attached) row; a later send
    changes nothing. True when this was the first."""
    if script_sent_at(task) is not None:
        return False
    task.detail = {**(task.detail or {}), SCRIPT_SENT_AT: at.isoformat()}
    return True
