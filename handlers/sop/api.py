"""What other features may use of the SOP engine: task cards (issue one, move open ones with
their customer) and the task table."""

from __future__ import annotations

from .cards import TaskCard, issue_card
from .handover import move_tasks, open_tasks
from .model import Planned, Skip
from .models import SopMassSend, SopSend, SopTask
from .planner import HOLIDAY_LOOKBACK, DayPlanner, choose_branch, customer_anchor
from .press import PRESSABLE, press_task
from .reminders import ReminderRunner
from .scripts import SCRIPT_SENT_AT, record_script_sent, script_of, script_sent_at
from .targets import CustomerTarget, FollowInfo, iter_customers

__all__ = ["SopTask", "TaskCard", "issue_card", "move_tasks", "open_tasks"]
# The sidebar settles a task beside the chat exactly as the card's button would.
__all__ += ["PRESSABLE", "SopSend", "press_task"]
# The sidebar shows a customer's upcoming sends, worked out with the planner's own rules.
__all__ += ["HOLIDAY_LOOKBACK", "CustomerTarget", "choose_branch", "customer_anchor", "iter_customers"]
# … from the rows its panel has already read (the follows among them), not by asking again.
__all__ += ["FollowInfo"]
# The console's calendar shows what the scheduler will do by running the same planner, day by day.
__all__ += ["DayPlanner", "Planned", "Skip"]
# The console's SOP effect page counts the mass sends WeCom reports as sent.
__all__ += ["SopMassSend"]
# The lifecycle feature hands a churn-risk stage change to the reminders (on: churn_risk).
__all__ += ["ReminderRunner"]
# The sidebar offers a task's script first and reports its send; the effect page counts it delivered.
__all__ += ["SCRIPT_SENT_AT", "record_script_sent", "script_of", "script_sent_at"]
