"""The Feature contract: composition is written and ordered by ``after=``, never discovered; a
new feature is one folder and one line in the composition list."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from scrm.kernel.clock import FakeClock
from scrm.kernel.events import InternalEvent
from scrm.kernel.feature import Feature, FeatureError, compose
from scrm.kernel.http import create_app
from scrm.kernel.service import Runtime
from scrm.main import FEATURES
from scrm.playbook.holder import PlaybookHolder
from tests.conftest import make_settings
from tests.playbook.factory import REPO
from tests.support.service import drain, running_service


def names(features: tuple[Feature, ...]) -> list[str]:
    return [f.name for f in features]


def test_the_list_order_stands_unless_after_moves_a_feature() -> None:
    a, b, c = Feature("a"), Feature("b", after=("c",)), Feature("c")
    assert names(compose((a, b, c))) == ["a", "c", "b"]
    assert names(compose((a, c, b))) == ["a", "c", "b"]
    assert names(compose((Feature("x"), Feature("y")))) == ["x", "y"]


@pytest.mark.parametrize(("features", "message"), [
    ((Feature("a", after=("nope",)),), "feature 'a': after names unknown feature(s) nope"),
    ((Feature("a", requires=("b",)),), "feature 'a': requires names unknown feature(s) b"),
    ((Feature("a", after=("b",)), Feature("b", after=("a",))), "features wait for each other (cycle in after=): a → b"),
    ((Feature("a"), Feature("a")), "feature 'a' is listed twice"),
])
def test_bad_compositions_refuse_to_start(features: tuple[Feature, ...], message: str) -> None:
    with pytest.raises(FeatureError) as err:
        compose(features)
    assert str(err.value) == message


def test_every_shipped_feature_is_composed_once() -> None:
    assert names(FEATURES) == ["contacts", "crm", "groups", "radar", "sop", "staff", "succession", "tags", "backfill",
                               "console", "sidebar", "lifecycle", "campaigns", "membership", "referral",
                               "compliance", "feedback", "timeline"]


TOY = '''\
"""A toy feature: counts pings and shows the count over HTTP."""

from aiohttp import web

from scrm.kernel.dispatch import Router
from scrm.kernel.feature import Feature

router = Router("toy")
PINGS: list[str] = []


@router.on("toy.ping")
async def on_ping(event, session) -> None:
    PINGS.append(event.payload["who"])


def install_http(app, runtime) -> None:
    async def count(request):
        return web.json_response({"pings": PINGS})

    app.router.add_get("/toy", count)


FEATURE = Feature(name="toy", router=router, http=install_http, after=("contacts",))
'''


@pytest.fixture
def toy_folder(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "features" / "toy"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(textwrap.dedent(TOY))
    sys.path.insert(0, str(folder.parent))
    try:
        yield folder
    finally:
        sys.path.remove(str(folder.parent))
        sys.modules.pop("toy", None)


async def test_a_new_feature_is_one_folder_and_one_line(toy_folder: Path, sqlite_url: str) -> None:
    toy = importlib.import_module("toy")
    features = compose((*FEATURES, toy.FEATURE))  # the one line
    assert names(features) == [*names(FEATURES), "toy"]
    clock = FakeClock()
    async with running_service(make_settings(sqlite_url), clock=clock) as (shipped, client):
        assert "toy" not in names(shipped.features)  # not listed, not run: nothing is discovered
        assert (await client.get("/toy")).status == 404
    shipped = {"sop_dir": str(REPO / "sop"), "materials_dir": str(REPO / "materials")}
    settings = make_settings(sqlite_url, playbook=shipped)
    runtime = Runtime(settings, features=features, clock=clock, playbook=PlaybookHolder(settings.playbook, clock))
    client = TestClient(TestServer(create_app(runtime, workers=False)))
    await client.start_server()
    try:
        async with runtime.sessions() as session, session.begin():
            ping = InternalEvent(source="toy", kind="toy.ping", at=clock.now(), payload={"who": "zhangwei"})
            await runtime.inbox.add_internal(session, ping, "1")
        assert await drain(runtime) == 1
        resp = await client.get("/toy")
        assert resp.status == 200 and await resp.json() == {"pings": ["zhangwei"]}
    finally:
        await client.close()


def test_the_import_contracts_in_pyproject_are_generated_from_the_features() -> None:
    """Each feature's "uses only api.py" contract comes from FEATURES (scripts/feature_contracts.py)."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "feature_contracts.py"
    run = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
