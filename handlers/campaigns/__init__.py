"""Campaigns: A/B experiments on SOP steps and one-off campaigns (``sop/campaigns/``: audience,
channels, variants and holdout, goal, cost; run by the SOP engine, measured as a funnel) — each
measured against a CRM conversion event."""

# Deliberately empty: importing a feature's api.py must not load its handlers (features require
# each other's api); the composition root imports handlers.<name>.feature.
