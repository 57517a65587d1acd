"""Routers, middlewares and the dispatcher: one pipeline for every kind of event.

Handlers declare what they need by parameter name (``event``, ``session``, ``clock``,
``outbox``, ``wecom``, ``playbook`` ...) and the dispatcher injects exactly those. Unknown
parameter names are refused when the dispatcher is built, not when an event arrives.

Every router sees every event; within one router the first matching handler wins. That lets a
domain router (contacts, groups, ...) and the timeline recorder each react to the same event
without knowing about one another.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("scrm.kernel.dispatch")

Handler = Callable[..., Awaitable[Any]]
Predicate = Callable[[Any], bool]
CallNext = Callable[[dict[str, Any]], Awaitable[list[str]]]
Middleware = Callable[[CallNext, dict[str, Any]], Awaitable[list[str]]]
# Why a handler's (name, annotation) parameters do not fit what is provided; empty when they do.
Check = Callable[[str, Sequence[tuple[str, object]]], list[str]]


class DispatchConfigError(Exception):
    """A handler asks for a dependency nobody provides (raised at start-up)."""


@dataclass(frozen=True)
class Route:
    handler: Handler
    matches_types: tuple[type, ...]
    matches_kinds: tuple[str, ...]
    predicate: Predicate | None
    params: tuple[str, ...]
    annotations: tuple[object, ...] = ()  # as written (strings under `from __future__ import annotations`)

    @property
    def name(self) -> str:
        return f"{self.handler.__module__}.{self.handler.__qualname__}"

    def matches(self, event: Any) -> bool:
        """No class or kind given matches every event; otherwise any one of them must match."""
        if self.matches_types or self.matches_kinds:
            hit = isinstance(event, self.matches_types) or getattr(event, "kind", None) in self.matches_kinds
            if not hit:
                return False
        return self.predicate is None or self.predicate(event)


@dataclass
class Router:
    """A named group of handlers, one module of ``handlers/`` each."""

    name: str
    routes: list[Route] = field(default_factory=list)

    def on(self, *matches: type | str, when: Predicate | None = None) -> Callable[[Handler], Handler]:
        """Register a handler for event classes and/or ``kind`` strings ("external_chat.update")."""
        types = tuple(m for m in matches if isinstance(m, type))
        kinds = tuple(m for m in matches if isinstance(m, str))

        def register(fn: Handler) -> Handler:
            if not inspect.iscoroutinefunction(fn):
                raise DispatchConfigError(f"handler {fn.__qualname__} must be async")
            parameters = inspect.signature(fn).parameters
            self.routes.append(Route(fn, types, kinds, when, tuple(parameters),
                                     tuple(p.annotation for p in parameters.values())))
            return fn

        return register


class Dispatcher:
    """Feeds an event through the middlewares to every router's first matching handler."""

    def __init__(
        self,
        routers: Sequence[Router],
        *,
        provides: Iterable[str] = (),
        check: Check | None = None,
        middlewares: Sequence[Middleware] = (),
    ) -> None:
        """``check`` (``scrm.kernel.deps.mismatches``) verifies each handler's parameter names and
        types; without it, the names are checked against ``provides``."""
        self.routers = list(routers)
        self.middlewares = list(middlewares)
        known = set(provides) | {"event"}
        for router in self.routers:
            for route in router.routes:
                if check is not None:
                    problems = check(route.name, list(zip(route.params, route.annotations, strict=True)))
                else:
                    missing = [p for p in route.params if p not in known]
                    problems = [f"{route.name} asks for {', '.join(missing)}; available: {', '.join(sorted(known))}"
                                ] if missing else []
                if problems:
                    raise DispatchConfigError("; ".join(problems))

    def handlers_for(self, event: Any) -> list[Route]:
        chosen = []
        for router in self.routers:
            for route in router.routes:
                if route.matches(event):
                    chosen.append(route)
                    break
        return chosen

    async def feed(self, event: Any, context: Mapping[str, Any]) -> list[str]:
        """Run the handlers for ``event``; returns the names of the handlers that ran."""
        ctx = dict(context)
        ctx["event"] = event

        async def innermost(c: dict[str, Any]) -> list[str]:
            ran = []
            for route in self.handlers_for(c["event"]):
                await route.handler(**{p: c[p] for p in route.params})
                ran.append(route.name)
            if not ran:
                log.info("no handler for event", extra={"kind": getattr(c["event"], "kind", "?")})
            return ran

        call: CallNext = innermost
        for mw in reversed(self.middlewares):
            call = _bind(mw, call)
        return await call(ctx)


def _bind(mw: Middleware, nxt: CallNext) -> CallNext:
    async def call(ctx: dict[str, Any]) -> list[str]:
        return await mw(nxt, ctx)

    return call
