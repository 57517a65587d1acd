"""Customer radar: tracked links (``/r/{token}``), clicks, interest tags, manager alerts and
the daily digest (``scrm radar``)."""

# Deliberately empty: importing a feature's api.py must not load its handlers (features require
# each other's api); the composition root imports handlers.<name>.feature.
