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
from scrm.main import FEATURES
from scrm.playbook import Playbook
from tests.conftest import make_settings
from tests.fakes.service import drain, running_service


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


async def forgets_none(event: Any, playbook: Playbook) -> None:
    """A service may run without a playbook: the handler must take None."""


def test_a_fitting_handler_is_accepted() -> None:
    _dispatcher(fits)


@pytest.mark.parametrize(("handler", "message"), [
    (typo, "test_deps.typo asks for sesion; available: clock, event, inbox, inbox_id, outbox, playbook, "
           "received_at, scheduler, session, settings, wecom"),
    (wrong_type, "test_deps.wrong_type: clock is Clock, not datetime (scrm/kernel/deps.py)"),
    (forgets_none, "test_deps.forgets_none: playbook is Playbook|None, not Playbook (scrm/kernel/deps.py)"),
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
                         playbook: Playbook | None) -> None:
        got.update({k: v for k, v in locals().items() if k != "got"})

    clock = FakeClock()
    async with running_service(make_settings(sqlite_url), clock=clock, routers=[router]) as (runtime, _):
        async with runtime.sessions() as session, session.begin():
            await runtime.inbox.add_internal(session, InternalEvent(source="t", kind="t.all", at=clock.now()), "1")
        assert await drain(runtime) == 1
    assert set(got) == set(deps.NAMES)
    assert got["clock"] is clock and isinstance(got["session"], AsyncSession) and got["playbook"] is None
