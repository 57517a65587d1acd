"""Backfill: adopting a WeCom corp that already has customers, groups and tags (``scrm backfill``,
and automatically on the first start against a corp), paged and resumable."""

# Deliberately empty: importing a feature's api.py must not load its handlers (features require
# each other's api); the composition root imports handlers.<name>.feature.
