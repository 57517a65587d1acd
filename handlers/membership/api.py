"""What other features may use of membership: the level-change event (a reminder or a path SOP
may act on it), the members' accounts (balances and level), and points another feature grants
by its own rules (a referral reward)."""

from __future__ import annotations

from .awards import Award, grant
from .events import LevelChanged
from .models import MembershipAccount

__all__ = ["Award", "LevelChanged", "MembershipAccount", "grant"]
