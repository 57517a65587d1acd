"""What other features may use of referral: who referred whom (a campaign's funnel counts the
friends its customers brought)."""

from __future__ import annotations

from .models import Referral

__all__ = ["Referral"]
