"""Lifecycle: 三分 segmentation (tier by AUM, segments by who the customer is, a value grade,
RFM bands) and lifecycle stages, recomputed nightly from ``sop/segments.yaml`` and
``sop/lifecycle.yaml``; a change of stage is an internal event SOPs and reminders act on."""

# Deliberately empty: importing a feature's api.py must not load its handlers (features require
# each other's api); the composition root imports handlers.<name>.feature.
