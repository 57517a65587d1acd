"""The Feature contract: everything a business feature adds to the service, in one value.

A feature lives in one folder (``handlers/<name>/``) and exports ``FEATURE``; the composition
root (``scrm/main.py``) lists the features in order. Nothing is discovered: a feature the list
does not name does not run, and dispatch order is what ``after`` declares, checked at start-up
(an unknown name or a cycle refuses to start), never the alphabetical order of file names.

A feature owns the kinds of internal events it produces (``events``: one typed class per kind,
``scrm.kernel.events.Internal``); the service parses stored internal events into the classes of
the composed features. A kind declared twice, or a handler for a typed kind no composed feature
declares, refuses to start.

Every hook receives the service when it is built and takes the collaborators it needs then
(views, workers and jobs never look the runtime up later).
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from aiohttp import web

from scrm.kernel.config import Section, Settings
from scrm.kernel.dispatch import Router
from scrm.kernel.events import EventKindError, EventKinds, Internal

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime
    from scrm.playbook import Playbook

HttpInstaller = Callable[[web.Application, "Runtime"], None]
JobsRegistrar = Callable[["Runtime"], Awaitable[object]]
Workers = Callable[["Runtime"], Mapping[str, Coroutine[Any, Any, None]]]
OutboxInstaller = Callable[["Runtime"], None]
SandboxSetup = Callable[["Runtime"], Awaitable[None]]
CliInstaller = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]
# The problems of the feature's own file in sop/, one ``file:line: key: message`` each, given the
# playbook ``scrm sop validate`` loaded (None when it did not load: a check that needs it then
# reports nothing, the playbook's own errors come first). Passing it in keeps validate to one load
# of the playbook, for the date it was asked about.
PlaybookCheck = Callable[[Settings, "Playbook | None"], Sequence[str]]


def settings_only(check: Callable[[Settings], Sequence[str]]) -> PlaybookCheck:
    """A :data:`PlaybookCheck` of a file that does not refer to the playbook (its rules stand alone)."""

    def checked(settings: Settings, _playbook: Playbook | None) -> Sequence[str]:
        return check(settings)

    return checked


class FeatureError(Exception):
    """The feature list cannot be composed (unknown name, cycle, duplicate); refuses start-up."""


@dataclass(frozen=True)
class Feature:
    """One business feature, as the service sees it.

    ``after``: features whose handlers must see each event before this one's (dispatch order).
    ``models``: the module declaring the feature's tables (Alembic and tests see them through it).
    ``settings``: its configuration section, ``[<name>]`` (``SCRM_<NAME>__<KEY>``).
    ``requires``: features whose ``api.py`` this one imports (documented, checked by name).
    ``events``: the internal event kinds it owns, one typed class each (its ``events.py``);
    other features consume them through its ``api.py``.
    ``http``: adds routes to the service's HTTP app. ``jobs``: (re-)registers scheduler jobs, at
    start and after each playbook reload. ``workers``: background loops by name. ``outbox``:
    installs the outbox semantics of the APIs it queues (preparers, refreshers). ``cli``: adds
    ``scrm`` sub-commands. ``sandbox``: sets a fresh sandbox tenant up (``scrm serve --sandbox``).
    ``check``: the problems of the feature's own file in sop/ (``scrm sop validate`` lists them).
    """

    name: str
    router: Router | None = None
    models: ModuleType | None = None
    settings: type[Section] | None = None
    after: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    events: tuple[type[Internal], ...] = ()
    http: HttpInstaller | None = None
    jobs: JobsRegistrar | None = None
    workers: Workers | None = None
    outbox: OutboxInstaller | None = None
    cli: CliInstaller | None = None
    sandbox: SandboxSetup | None = None
    check: PlaybookCheck | None = None


def compose(features: Iterable[Feature]) -> tuple[Feature, ...]:
    """The features in dispatch order: the given order, moved only as far as ``after`` demands.

    Raises :class:`FeatureError` for a duplicate, an unknown name in ``after``/``requires``, or a cycle.
    """
    listed = list(features)
    by_name: dict[str, Feature] = {}
    for f in listed:
        if f.name in by_name:
            raise FeatureError(f"feature {f.name!r} is listed twice")
        by_name[f.name] = f
    for f in listed:
        for kind, names in (("after", f.after), ("requires", f.requires)):
            unknown = [n for n in names if n not in by_name]
            if unknown:
                raise FeatureError(f"feature {f.name!r}: {kind} names unknown feature(s) {', '.join(unknown)}")
    ordered: list[Feature] = []
    placed: set[str] = set()
    pending = list(listed)
    while pending:
        # The first listed feature whose predecessors are all placed: stable, so the list's own
        # order decides wherever `after` says nothing.
        ready = next((f for f in pending if set(f.after) <= placed), None)
        if ready is None:
            cycle = " → ".join(f.name for f in pending)
            raise FeatureError(f"features wait for each other (cycle in after=): {cycle}")
        ordered.append(ready)
        placed.add(ready.name)
        pending.remove(ready)
    event_kinds(ordered)  # a kind declared twice, or handled but undeclared, refuses to start too
    return tuple(ordered)


def event_kinds(features: Sequence[Feature]) -> EventKinds:
    """Kind → typed class, from the features' ``events``.

    Raises :class:`FeatureError` for a kind declared twice (by two features or two classes), a
    handler of one of these features registered for a typed kind no listed feature declares
    (nothing would ever parse into it), or one registered by the string of a declared kind
    (it would receive the typed class: name the class).
    """
    kinds = EventKinds()
    owner: dict[str, str] = {}
    for f in features:
        for cls in f.events:
            kind = getattr(cls, "KIND", None)
            if isinstance(kind, str) and kind in owner:  # one owner per kind, even for the same class
                raise FeatureError(f"event kind {kind!r} is declared by feature {owner[kind]!r} "
                                   f"({_qualname(kinds.get(kind))}) and by feature {f.name!r} ({_qualname(cls)})")
            try:
                kinds.add(cls)
            except EventKindError as exc:
                raise FeatureError(f"feature {f.name!r}: {exc}") from None
            owner[cls.KIND] = f.name
    for f in features:
        for route in f.router.routes if f.router is not None else ():
            for t in route.matches_types:
                if issubclass(t, Internal) and kinds.get(getattr(t, "KIND", "")) is not t:
                    raise FeatureError(f"feature {f.name!r}: {route.name} handles {t.__qualname__}, an event kind "
                                       f"no listed feature declares in events=")
            for k in route.matches_kinds:
                declared = kinds.get(k)
                if declared is not None:
                    raise FeatureError(f"feature {f.name!r}: {route.name} handles {k!r} by its string; "
                                       f"register it with @router.on({declared.__qualname__})")
    return kinds


def _qualname(cls: type | None) -> str:
    return cls.__qualname__ if cls is not None else "?"


def routers_of(features: Sequence[Feature]) -> list[Router]:
    return [f.router for f in features if f.router is not None]
