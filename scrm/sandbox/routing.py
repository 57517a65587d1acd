"""How a sandbox API route is declared: a plain function from a :class:`Call` to a JSON reply.

Routes are synchronous on purpose: a call's whole effect is applied within one event-loop
step, so a dropped reply (faults.py) always leaves a complete effect, never half of one.
The server wrapper (server.py) does everything around them: faults, rate limits, token
checks, body parsing, the ``errcode``/``errmsg`` envelope and the received-calls log.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from scrm.sandbox.params import Json
from scrm.sandbox.state import SandboxState


@dataclass(frozen=True)
class ServerConfig:
    """The tenant identity the server answers for."""

    corp_id: str
    secret: str
    agent_id: int
    trusted_domain: str | None = None  # OAuth redirect_uri host must end with it (else 50001)


@dataclass(frozen=True)
class Upload:
    """A file from a multipart body."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class Call:
    """One API call as a route sees it."""

    state: SandboxState
    config: ServerConfig
    now: float
    query: Mapping[str, str]
    body: Json
    files: dict[str, Upload] = field(default_factory=dict)

    def arg(self, key: str) -> str:
        """A query parameter ('' when absent)."""
        return self.query.get(key, "")


Handler = Callable[[Call], Json]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    auth: bool = True  # needs ?access_token=


class RouteTable:
    """Routes of one domain module, declared with ``@router.get(path)`` / ``@router.post(path)``."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def _add(self, method: str, path: str, auth: bool) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append(Route(method=method, path=f"/cgi-bin/{path}", handler=handler, auth=auth))
            return handler

        return register

    def get(self, path: str, *, auth: bool = True) -> Callable[[Handler], Handler]:
        return self._add("GET", path, auth)

    def post(self, path: str, *, auth: bool = True) -> Callable[[Handler], Handler]:
        return self._add("POST", path, auth)
