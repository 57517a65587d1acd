"""The corp tag catalog: WeCom's tag groups and tags mirrored as they change."""

# Deliberately empty: importing a feature's api.py must not load its handlers (features require
# each other's api); the composition root imports handlers.<name>.feature.
