"""What other features may use of contacts: the customer mirror (members, customers, follow
relations), its upkeep, and a welcome material's attachment (group welcome templates)."""

from __future__ import annotations

from .follows import (
    corp_tag_ids,
    customer_names,
    member_name,
    record_contact,
    set_follow_tags,
    upsert_customer,
    upsert_follow,
)
from .models import Customer, Follow, Member
from .welcome import WelcomeError, attachment_of, date_context

__all__ = ["Customer", "Follow", "Member", "WelcomeError", "attachment_of", "corp_tag_ids", "customer_names",
           "date_context", "member_name", "record_contact", "set_follow_tags", "upsert_customer", "upsert_follow"]
