"""What a handler may ask for: one documented list of names and their types.

Handlers declare their dependencies by parameter name (``async def on_add(event, session,
outbox, clock)``); the dispatcher checks every handler against :class:`HandlerDeps` when it is
built — an unknown name or a type that does not match its field refuses to start, naming the
handler — and the runtime builds one ``HandlerDeps`` per event (so mypy checks what it provides).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from scrm.adapters.wecom.api import WeComClient
from scrm.kernel.clock import Clock
from scrm.kernel.config import Settings
from scrm.kernel.inbox import Inbox
from scrm.kernel.outbox import Outbox
from scrm.kernel.scheduler import Scheduler

if TYPE_CHECKING:  # the kernel runs a playbook without knowing it (only its type, for the check)
    from scrm.playbook import Playbook


@dataclasses.dataclass(frozen=True)
class ServiceDeps:
    """What the runtime provides to every handler.

    ``clock``: the injected time. ``settings``: the whole configuration. ``inbox``: to add
    internal events in the handler's transaction. ``outbox``: to queue WeCom calls. ``wecom``: the
    API client, for reads before writing. ``scheduler``: to put jobs. ``playbook``: the running
    playbook, never ``None`` (a service without one refuses to start a handler that asks for it).
    """

    clock: Clock
    settings: Settings
    inbox: Inbox
    outbox: Outbox
    wecom: WeComClient
    scheduler: Scheduler
    playbook: Playbook


@dataclasses.dataclass(frozen=True)
class HandlerDeps(ServiceDeps):
    """Everything a handler may ask for by parameter name: :class:`ServiceDeps`, and per event
    (added by the inbox) ``event`` (a WeCom event model or an internal event), ``session`` (the
    event's transaction: the handler's writes, its outbox rows and the inbox row's ``done`` mark
    commit together), ``inbox_id`` and ``received_at`` (for idempotency keys and timeline links).
    """

    event: Any
    session: AsyncSession
    inbox_id: int
    received_at: datetime


NAMES = tuple(f.name for f in dataclasses.fields(HandlerDeps))


def _norm(annotation: object) -> str:
    if annotation is inspect.Parameter.empty:
        return "Any"  # not annotated: takes whatever is provided
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", repr(annotation))
    return re.sub(r"\s+", "", text)


def _accepts(declared: str, provided: str) -> bool:
    """A handler's annotation ``declared`` takes the dependency typed ``provided``.

    The same name; or ``X | None`` for an ``X``; or ``Any``. Annotations are compared as written
    (the project writes every dependency's type by its plain class name).
    """
    if declared == "Any":
        return True
    options = set(declared.split("|"))
    return set(provided.split("|")) <= options


def mismatches(name: str, params: Iterable[tuple[str, object]]) -> list[str]:
    """Why handler ``name``'s parameters do not fit :class:`HandlerDeps` (empty when they do)."""
    fields = {f.name: _norm(f.type) for f in dataclasses.fields(HandlerDeps)}
    problems = []
    for param, annotation in params:
        if param not in fields:
            problems.append(f"{name} asks for {param}; available: {', '.join(sorted(fields))}")
        elif param != "event" and not _accepts(_norm(annotation), fields[param]):
            problems.append(f"{name}: {param} is {fields[param]}, not {_norm(annotation)} (scrm/kernel/deps.py)")
    return problems


_SERVICE_NAMES = tuple(f.name for f in dataclasses.fields(ServiceDeps))


def as_context(deps: ServiceDeps) -> dict[str, Any]:
    """The runtime's dependencies by name, for the dispatcher's call (no copy of the objects);
    built for every event, so the names are computed once."""
    return {name: getattr(deps, name) for name in _SERVICE_NAMES}
