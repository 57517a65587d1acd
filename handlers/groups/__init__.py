"""Customer groups: classification into group types, member deltas, caps and QR-pool rotation,
event-group (活动快闪群) lifetimes, group welcome templates (``scrm groups``)."""

# Deliberately empty: importing a feature's api.py must not load its handlers (features require
# each other's api); the composition root imports handlers.<name>.feature.
