"""What other features may use of groups: the customer group registry's tables, and writing a
group as ``groupchat/get`` describes it (a full re-read)."""

from __future__ import annotations

from .models import GroupChat, GroupMember, GroupPool
from .registry import write_full

__all__ = ["GroupChat", "GroupMember", "GroupPool", "write_full"]
