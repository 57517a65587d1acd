"""The pages' environment renders exactly what a default Jinja2 environment renders — an item
read directly where Jinja would first fail to find an attribute — and still errors where a value
is undefined."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import pytest
from aiohttp import web

from scrm.kernel.page_templates import PageEnvironment, setup_pages

SOURCE = ("{{ d.name }}|{{ d['name'] }}|{{ d.items()|list|length }}|{{ d.values }}|{{ m.rank }}|"
          "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{{ o.real }}|{{ s.upper() }}|{{ l.count(1) }}")


class Named(dict[str, Any]):
    """A dict subclass: its attribute lookup is left to Jinja."""

    label = "attribute"


def contexts() -> list[dict[str, Any]]:
    return [
        {"d": {"name": "<b>张伟</b>", "values": "an item named like a dict method", "n": 1},
         "m": {"rank": 3}, "o": 7, "s": "abc", "l": [1, 1, 2]},
        {"d": {"name": None, "values": [1, 2]}, "m": Named(rank=1), "o": 2.5, "s": "", "l": []},
    ]


@pytest.mark.parametrize("context", contexts())
def test_renders_as_a_default_environment_does(context: dict[str, Any]) -> None:
    ours = PageEnvironment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(SOURCE)
    theirs = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(SOURCE)
    assert ours.render(context) == theirs.render(context)
    # ``d.values`` is the dict's method in both (an attribute of dict wins, as in Jinja).
    assert "bound method" in ours.render(context) or "built-in method" in ours.render(context)


def test_a_dict_subclass_keeps_its_attributes() -> None:
    env = PageEnvironment(undefined=jinja2.StrictUndefined)
    assert env.from_string("{{ m.label }} {{ m.rank }}").render(m=Named(rank=1, label="item")) == "attribute 1"


def test_a_missing_key_is_still_undefined() -> None:
    env = PageEnvironment(undefined=jinja2.StrictUndefined)
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ d.missing }}").render(d={"name": "x"})
    assert env.from_string("{{ d.missing is defined }}").render(d={}) == "False"


def test_setup_pages_serves_aiohttp_jinja2(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text("{{ d.title }}", encoding="utf-8")
    app = web.Application()
    env = setup_pages(app, tmp_path)
    assert isinstance(env, PageEnvironment) and env.autoescape and not env.auto_reload
    assert env.get_template("page.html").render(d={"title": "<x>"}) == "&lt;x&gt;"
