"""Succession: no customer is ever orphaned — handovers of a resigned manager's customers and
groups (离职继承) and moves between managers in office (在职继承, 管户调整), by rules in YAML."""

# Deliberately empty: importing a feature's api.py must not load its handlers (features require
# each other's api); the composition root imports handlers.<name>.feature.
