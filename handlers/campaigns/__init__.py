"""Campaigns: A/B experiments on SOP steps (this slice), later one-off campaigns, referral (MGM)
and feedback (NPS) — each measured against a CRM conversion event."""

# Deliberately empty: importing a feature's api.py must not load its handlers (features require
# each other's api); the composition root imports handlers.<name>.feature.
