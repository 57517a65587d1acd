"""Business reactions to events, one module per domain; each module exports ``router``.

Handlers import ``scrm``; ``scrm`` never imports handlers except in ``scrm.app``. A new domain
module is picked up by its presence: no registration list to forget.
"""

from __future__ import annotations

import importlib
import pkgutil

from scrm.dispatch import Router

# Business handlers first: they call WeCom (reads) before writing, and on SQLite the first write
# of the event's transaction takes the database's write lock until commit. The timeline
# recorder only writes, so it goes last.
LAST = ("timeline",)


def all_routers() -> list[Router]:
    """Every shipped router: domain modules in name order, then the timeline recorder."""
    import handlers

    names = sorted(m.name for m in pkgutil.iter_modules(handlers.__path__) if not m.name.startswith("_"))
    ordered = [n for n in names if n not in LAST] + [n for n in LAST if n in names]
    routers = []
    for name in ordered:
        module = importlib.import_module(f"handlers.{name}")
        router = getattr(module, "router", None)
        if isinstance(router, Router):
            routers.append(router)
    return routers
