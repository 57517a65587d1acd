"""What other features may use of groups: the customer group registry's tables."""

from __future__ import annotations

from .models import GroupChat, GroupMember, GroupPool

__all__ = ["GroupChat", "GroupMember", "GroupPool"]
