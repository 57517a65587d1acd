"""Contacts: a customer adds a client manager (welcome on the 20-second path, channel tags,
the customer mirror), edits, deletions and transfers; channel QR codes (``scrm channels``)."""

# Deliberately empty: importing a feature's api.py must not load its handlers (features require
# each other's api); the composition root imports handlers.<name>.feature.
