"""Staff: the bank's directory of members and departments (branch → sub-branch → team), their
team leads and whether they still work here, from WeCom's address book or an HR file
(``scrm staff sync|import|list|show``)."""

# Deliberately empty: importing a feature's api.py must not load its handlers (features require
# each other's api); the composition root imports handlers.<name>.feature.
