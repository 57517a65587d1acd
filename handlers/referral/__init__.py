"""Referral (老带新, MGM): each customer's personal code as a 「联系我」 QR code whose ``state``
carries it; a new contact arriving through it attributed to the referrer (one referrer per
friend, ever; self-referrals, loops and old customers refused and flagged); both sides rewarded
once the friend reaches a qualifying CRM event within the window (points and growth in the
membership ledger, or a gift card for the manager), under a monthly cap per referrer; a report
with the leaderboard, each segment's super users and the flags."""

# Deliberately empty: importing a feature's api.py must not load its handlers (features require
# each other's api); the composition root imports handlers.referral.feature.
