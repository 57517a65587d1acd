"""The customers pages (/console/customers): search, and one customer's page."""

from __future__ import annotations

from aiohttp import web


def add_routes(app: web.Application) -> None:
    """Filled in by the page's own change."""
