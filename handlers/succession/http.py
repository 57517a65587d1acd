"""``POST /crm/v1/succession:move``: the CRM asks to move customers between managers.

    {"moves": [{"request_id": "R1", "from": "zhangwei", "to": "lina",
                "external_userids": ["wm…"], "message": "…"}]}

Signed and read like every CRM push (:func:`handlers.crm.api.read_signed_batch`);
all or nothing; every error is one line of JSON. Verify, store, acknowledge: the moves are
planned from the inbox. ``request_id`` makes a resend harmless.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import ValidationError

from handlers.crm.api import AuthError, read_signed_batch
from handlers.succession.requests import MoveRecord, explain, store_moves

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime

PATH = "/crm/v1/succession:move"
MAX_MOVES = 100


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def _moves(items: list[Any]) -> tuple[list[MoveRecord], list[str]]:
    if not items:
        raise AuthError(400, 'body must be {"moves": [...]} with at least one move')
    moves: list[MoveRecord] = []
    errors: list[str] = []
    for i, item in enumerate(items):
        try:
            moves.append(MoveRecord.model_validate(item))
        except ValidationError as exc:
            errors.append(f"moves[{i}]: {explain(exc)}")
    return moves, errors


def _endpoint(runtime: Runtime) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        try:
            moves, errors = _moves(await read_signed_batch(request, runtime, "moves", max_records=MAX_MOVES))
        except AuthError as exc:
            return _error(exc.status, str(exc))
        if errors:
            return _error(400, f"{len(errors)} invalid move(s); nothing stored", details=errors[:100])
        async with runtime.sessions() as session, session.begin():
            await store_moves(session, runtime.inbox, moves, "crm", runtime.clock.now())
        runtime.inbox.wake()
        return web.json_response({"accepted": len(moves)})

    return handle


def install(app: web.Application, runtime: Runtime) -> None:
    app.router.add_post(PATH, _endpoint(runtime))
