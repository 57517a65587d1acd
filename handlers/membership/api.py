"""What other features may use of membership: the level-change event (a reminder or a path SOP
may act on it) and the members' accounts (balances and level)."""

from __future__ import annotations

from .events import LevelChanged
from .models import MembershipAccount

__all__ = ["LevelChanged", "MembershipAccount"]
