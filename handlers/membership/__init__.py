"""Membership growth: spendable points (消费性积分) and growth value (成长值) earned by behaviours
named in ``sop/membership.yaml``, kept in an append-only ledger; levels that rise as soon as a
threshold is crossed and fall only at the periodic review; points that expire by rule."""

# Deliberately empty: importing a feature's api.py must not load its handlers (features require
# each other's api); the composition root imports handlers.membership.feature.
