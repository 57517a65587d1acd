"""Rendered page bodies, kept while what they show is the very same result object.

A kept cockpit result (:mod:`handlers.console.viewcache`) is served to every viewer of its scope
and period as the same object; rendering it — a table row and a drill-down link for each of 300
managers, ~100 kB of HTML — was most of what such a view still cost the service (~12 ms of ~15).
The body depends only on that result and a few small inputs besides (the period asked for, the
breadcrumbs the viewer may follow, the "as of" time), so it is kept under those inputs and used
only while the result beside it is the same object (``is``): any result computed again — a day
rolled up, today refreshed, a change in the directory — renders again. The page around the body
(the viewer's name, role and CSRF token) is rendered for each request as before.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable

from markupsafe import Markup


class Fragments:
    """The last ``size`` rendered bodies, each with the result object it was rendered from."""

    # Every scope's cockpit (two or three periods), effect, tasks and calendar body, and the
    # materials page: a bank's access file of some tens of scopes; at most ~150 kB each.
    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._kept: OrderedDict[Hashable, tuple[object, Markup]] = OrderedDict()

    def get(self, key: Hashable, source: object) -> Markup | None:
        """The body kept under ``key`` if it was rendered from ``source`` itself."""
        kept = self._kept.get(key)
        if kept is None or kept[0] is not source:
            return None
        self._kept.move_to_end(key)
        return kept[1]

    def put(self, key: Hashable, source: object, rendered: str) -> Markup:
        # ``rendered`` is what the template autoescaped: Markup keeps it from being escaped twice.
        html = Markup(rendered)
        self._kept[key] = (source, html)
        self._kept.move_to_end(key)
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)
        return html

    def html(self, key: Hashable, source: object, render: Callable[[], str]) -> Markup:
        """The body kept under ``key`` if rendered from ``source`` itself, else ``render()``'s (kept)."""
        kept = self.get(key, source)
        return kept if kept is not None else self.put(key, source, render())
