"""What other features may use of the campaigns feature.

The SOP engine asks which arm of an experiment a customer is in for a step (the planner sends
the variant's material, skips the holdout) and records the exposure when the step takes effect.
"""

from __future__ import annotations

from .book import HOLDOUT_REASON, Arm, ExperimentBook, Exposures, in_force

__all__ = ["HOLDOUT_REASON", "Arm", "ExperimentBook", "Exposures", "in_force"]
