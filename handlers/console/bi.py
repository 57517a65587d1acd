"""The figures for the bank's BI: ``GET /api/v1/reports/NAME`` (token-authenticated)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime


def install(app: web.Application, runtime: Runtime) -> None:
    """Filled in by the BI API's own change."""
