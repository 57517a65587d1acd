"""What other features may use of feedback: the answers (a campaign counts its survey's answers)
and the event of a new one."""

from __future__ import annotations

from .events import FeedbackAnswered
from .models import FeedbackAnswer

__all__ = ["FeedbackAnswer", "FeedbackAnswered"]
