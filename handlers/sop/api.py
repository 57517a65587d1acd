"""What other features may use of the SOP engine: task cards (issue one, move open ones with
their customer) and the task table."""

from __future__ import annotations

from .cards import TaskCard, issue_card
from .handover import move_tasks, open_tasks
from .models import SopSend, SopTask
from .press import PRESSABLE, press_task

__all__ = ["SopTask", "TaskCard", "issue_card", "move_tasks", "open_tasks"]
# The sidebar settles a task beside the chat exactly as the card's button would.
__all__ += ["PRESSABLE", "SopSend", "press_task"]
