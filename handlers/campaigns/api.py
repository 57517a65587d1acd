"""What other features may use of the campaigns feature.

The SOP engine asks which arm of an experiment a customer is in for a step (the planner sends
the variant's material, skips the holdout) and records the exposure when the step takes effect.
It also runs the campaigns (``sop/campaigns/``): which channels are due in a slot, who is in a
campaign's audience, and what each channel did for each customer (:class:`CampaignTouches`).
"""

from __future__ import annotations

from .audience import Facts, admits, load_facts, needs_facts
from .book import HOLDOUT_REASON, Arm, ExperimentBook, Exposures, in_force
from .campaign import SOURCE_PREFIX, Campaign, Channel, check_campaigns, load_campaigns
from .campaign_book import (
    HOLDOUT_TOUCH,
    SENT,
    SKIPPED,
    CampaignBook,
    CampaignTouches,
    campaign_of_source,
    campaigns_in_force,
)
from .checks import check_files
from .funnel import BY, UnknownCampaign, campaign_report, render
from .moments import ADD_MOMENT_TASK, follow_moment, record_moment
from .moments import ASKED as MOMENT_ASKED

__all__ = [
    "ADD_MOMENT_TASK",
    "BY",
    "HOLDOUT_REASON",
    "HOLDOUT_TOUCH",
    "MOMENT_ASKED",
    "SENT",
    "SKIPPED",
    "SOURCE_PREFIX",
    "Arm",
    "Campaign",
    "CampaignBook",
    "CampaignTouches",
    "Channel",
    "ExperimentBook",
    "Exposures",
    "Facts",
    "UnknownCampaign",
    "admits",
    "campaign_of_source",
    "campaign_report",
    "campaigns_in_force",
    "check_campaigns",
    "check_files",
    "follow_moment",
    "in_force",
    "load_campaigns",
    "load_facts",
    "needs_facts",
    "record_moment",
    "render",
]
