"""SOP effect page (/console/effect): per SOP and step — targeted, sent, skipped, delivered, opened, converted."""

from __future__ import annotations

from aiohttp import web


def add_routes(app: web.Application) -> None:
    """Filled in by the page's own change."""
