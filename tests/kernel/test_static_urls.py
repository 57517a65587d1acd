"""``static_urls`` gives aiohttp's own versioned URL of a static file, computed once per file
(the hash is not taken again when the file changes while the process runs)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from scrm.kernel.static_urls import static_urls


def test_a_static_url_is_aiohttps_versioned_url_computed_once(tmp_path: Path) -> None:
    (tmp_path / "chart.js").write_text("var a = 1;", encoding="utf-8")
    (tmp_path / "other.js").write_text("var b = 2;", encoding="utf-8")
    app = web.Application()
    app.router.add_static("/static/", tmp_path, name="static", append_version=True)
    url = static_urls(app)

    first = url("chart.js")
    assert first == str(app.router["static"].url_for(filename="chart.js"))
    assert first.startswith("/static/chart.js?v=")
    assert url("other.js") == str(app.router["static"].url_for(filename="other.js"))  # each file its own

    (tmp_path / "chart.js").write_text("var a = 2;", encoding="utf-8")
    assert str(app.router["static"].url_for(filename="chart.js")) != first  # aiohttp hashes again
    assert url("chart.js") == first  # computed once
