"""The calendar page (/console/calendar): what goes out when over the next 30 days, from the planner."""

from __future__ import annotations

from aiohttp import web


def add_routes(app: web.Application) -> None:
    """Filled in by the page's own change."""
