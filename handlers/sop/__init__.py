"""The SOP engine: runs the playbook's group calendars, 1:1 paths and key-event reminders —
time slots, task cards and their buttons, snoozes, escalations, carry-over, follow-up, the
daily compliance notice (``scrm sop``)."""

# Deliberately empty: importing a feature's api.py must not load its handlers (features require
# each other's api); the composition root imports handlers.<name>.feature.
