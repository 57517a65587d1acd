"""Versioned URLs of an app's static files, computed once per file.

Pages link their vendored scripts with a content hash in the URL (``?v=…``: a browser may keep
them for ever, and a new release is a new URL). aiohttp computes that hash by reading and hashing
the whole file on every ``url_for`` call — 1 MB for ECharts, on every render of a page that
draws a chart, ~2 ms of the event loop each time. The files ship with the package and do not
change while the process runs, so each URL is computed once.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web


def static_urls(app: web.Application, route: str = "static") -> Callable[[str], str]:
    """``url(filename)`` → the path of ``filename`` under ``app``'s static ``route``, with its hash."""
    known: dict[str, str] = {}

    def url(filename: str) -> str:
        found = known.get(filename)
        if found is None:
            found = known[filename] = str(app.router[route].url_for(filename=filename))
        return found

    return url
