"""The timeline: what happened to each customer, group and member, for people to read."""

# Deliberately empty: importing a feature's api.py must not load its handlers (features require
# each other's api); the composition root imports handlers.<name>.feature.
