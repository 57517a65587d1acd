"""What other features may use of membership: the level-change event (a reminder or a path SOP
may act on it), the members' accounts (balances and level), points another feature grants by
its own rules (a referral reward), a customer's check-in and quiz links (the sidebar puts them in
the chat), and redemption requests (the sidebar and the console redeem as ``scrm membership
redeem`` does), and what the console's membership figures need (the rules' levels, the level
changes, the report's pyramid and months of flows)."""

from __future__ import annotations

from .awards import Award, grant
from .events import LevelChanged
from .links import Links
from .models import MembershipAccount, MembershipLevelChange, MembershipRedemption
from .redeem import RedemptionRefused, Reservation, request_redemption
from .report import pyramid, since_months
from .rules import Membership
from .rules import load_current as current_membership

__all__ = ["Award", "LevelChanged", "Links", "Membership", "MembershipAccount", "MembershipLevelChange",
           "MembershipRedemption", "RedemptionRefused", "Reservation", "current_membership", "grant", "pyramid",
           "request_redemption", "since_months"]
