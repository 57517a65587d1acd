"""What other features may use of membership: the level-change event (a reminder or a path SOP
may act on it), the members' accounts (balances and level), points another feature grants by
its own rules (a referral reward), a customer's check-in and quiz links (the sidebar puts them in
the chat), and redemption requests (the sidebar and the console redeem as ``scrm membership
redeem`` does)."""

from __future__ import annotations

from .awards import Award, grant
from .events import LevelChanged
from .links import Links
from .models import MembershipAccount, MembershipRedemption
from .redeem import RedemptionRefused, Reservation, request_redemption

__all__ = ["Award", "LevelChanged", "Links", "MembershipAccount", "MembershipRedemption", "RedemptionRefused",
           "Reservation", "grant", "request_redemption"]
