"""Business reactions to events, one module per domain; each module exports ``router``.

Handlers import ``scrm``; ``scrm`` never imports handlers except in ``scrm.app``.
"""

from __future__ import annotations

from scrm.dispatch import Router


def all_routers() -> list[Router]:
    """Every shipped router, in the order they see an event."""
    from handlers import timeline

    return [timeline.router]
