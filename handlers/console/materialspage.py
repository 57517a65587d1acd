"""The materials page (/console/materials): the library with its compliance state, rendered as the customer sees it."""

from __future__ import annotations

from aiohttp import web


def add_routes(app: web.Application) -> None:
    """Filled in by the page's own change."""
