"""What other features may use of contacts: the customer mirror (members, customers, follow
relations), its upkeep, and a welcome material's attachment (group welcome templates)."""

from __future__ import annotations

from .added import AddedContact, added_contact
from .follows import (
    ASSIGNED_ADD_WAY,
    corp_tag_ids,
    customer_names,
    member_name,
    record_contact,
    set_follow_tags,
    upsert_customer,
    upsert_follow,
)
from .handover import hand_over_follow
from .models import ChannelWay, Customer, Follow, Member
from .welcome import WelcomeError, attachment_of, date_context

__all__ = ["ASSIGNED_ADD_WAY", "AddedContact", "ChannelWay", "Customer", "Follow", "Member", "WelcomeError",
           "added_contact", "attachment_of", "corp_tag_ids", "customer_names", "date_context", "hand_over_follow",
           "member_name", "record_contact", "set_follow_tags", "upsert_customer", "upsert_follow"]
