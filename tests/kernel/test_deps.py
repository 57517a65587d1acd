"""Handlers declare dependencies by name; the names and their types are checked against
scrm/kernel/deps.py when the dispatcher is built, so a typo or a wrong type refuses to start."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from scrm.kernel import deps
from scrm.kernel.clock import Clock, FakeClock
from scrm.kernel.config import Settings
from scrm.kernel.dispatch import DispatchConfigError, Dispatcher, Router
from scrm.kernel.events import InternalEvent
from scrm.kernel.feature import routers_of
from scrm.kernel.inbox import Inbox
from scrm.kernel.outbox import Outbox
from scrm.kernel.scheduler import Scheduler
from scrm.kernel.service import Runtime
from scrm.main import FEATURES
from scrm.playbook import Playbook
from tests.conftest import make_settings
from tests.playbook.factory import REPO
from tests.support.service import drain, running_service


def _dispatcher(handler: Any) -> Dispatcher:
    router = Router("t")
    router.on("t.kind")(handler)
    return Dispatcher([router], check=deps.mismatches)


def test_every_shipped_handler_fits_the_documented_dependencies() -> None:
    Dispatcher(routers_of(FEATURES), check=deps.mismatches)  # raises otherwise


async def fits(event: Any, session: AsyncSession, clock: Clock, playbook: Playbook | None, inbox_id: int) -> None:
    """A handler as the features write them."""


async def typo(event: Any, sesion: AsyncSession) -> None:
    """A misspelt dependency."""


async def wrong_type(event: Any, clock: datetime) -> None:
    """The clock is not a datetime."""


async def wrong_id(event: Any, inbox_id: str) -> None:
    """The inbox row's id is an int."""


def test_a_fitting_handler_is_accepted() -> None:
    _dispatcher(fits)


@pytest.mark.parametrize(("handler", "message"), [
    (typo, "test_deps.typo asks for sesion; available: clock, event, inbox, inbox_id, outbox, playbook, "
           "received_at, scheduler, session, settings, wecom"),
    (wrong_type, "test_deps.wrong_type: clock is Clock, not datetime (scrm/kernel/deps.py)"),
    (wrong_id, "test_deps.wrong_id: inbox_id is int, not str (scrm/kernel/deps.py)"),
])
def test_a_handler_that_does_not_fit_refuses_to_start(handler: Any, message: str) -> None:
    with pytest.raises(DispatchConfigError) as err:
        _dispatcher(handler)
    assert str(err.value).endswith(message)


async def test_the_running_service_provides_every_documented_name(sqlite_url: str) -> None:
    got: dict[str, Any] = {}
    router = Router("all")

    @router.on("t.all")
    async def everything(event: Any, session: AsyncSession, inbox_id: int, received_at: datetime, clock: Clock,
                         settings: Settings, inbox: Inbox, outbox: Outbox, wecom: Any, scheduler: Scheduler,
                         playbook: Playbook) -> None:
        got.update({k: v for k, v in locals().items() if k != "got"})

    clock = FakeClock()
    shipped = {"sop_dir": str(REPO / "sop"), "materials_dir": str(REPO / "materials")}
    settings = make_settings(sqlite_url, playbook=shipped)
    async with running_service(settings, clock=clock, routers=[router], playbook=True) as (runtime, _):
        async with runtime.sessions() as session, session.begin():
            await runtime.inbox.add_internal(session, InternalEvent(source="t", kind="t.all", at=clock.now()), "1")
        assert await drain(runtime) == 1
    assert set(got) == set(deps.NAMES)
    assert got["clock"] is clock and isinstance(got["session"], AsyncSession)
    assert got["playbook"] is runtime.playbook.current and isinstance(got["playbook"], Playbook)


async def test_handlers_that_need_the_playbook_do_not_run_without_one(sqlite_url: str) -> None:
    router = Router("needy")
    router.on("t.kind")(fits)
    runtime = Runtime(make_settings(sqlite_url), clock=FakeClock(), routers=[router], load_playbook=False)
    try:
        with pytest.raises(DispatchConfigError) as err:
            await runtime.start(workers=False)
        assert str(err.value).startswith("tests.kernel.test_deps.fits needs the playbook, and this service has none")
    finally:
        await runtime.stop()
