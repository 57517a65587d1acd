"""Customer groups: classification into group types, member deltas, caps and QR-pool rotation,
flash-group lifetimes, group welcome templates (``scrm groups``)."""

# Deliberately empty: importing a feature's api.py must not load its handlers (features require
# each other's api); the composition root imports handlers.<name>.feature.
