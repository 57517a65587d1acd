"""Customer feedback: NPS and satisfaction surveys (sop/feedback.yaml) answered on the service's
own form page (``/f/{token}``), reached through a survey material's tracked link; each answer
tags the customer promoter/passive/detractor in WeCom, a low score puts a card before the
manager, and ``scrm feedback report`` gives NPS by segment, branch and period."""

# Deliberately empty: importing a feature's api.py must not load its handlers (features require
# each other's api); the composition root imports handlers.feedback.feature.
