"""``POST /crm/v1/staff``: the HR system pushes the staff directory, for banks whose WeCom app may
not read the address book (the same rows as the HR file, ``scrm staff import``).

    {"members": [{"userid": "zhangwei", "name": "张伟", "department": "杭州分行/城西支行/代发服务团队",
                  "team_lead": "wangqiang", "status": "active"}]}

Signed and read like every CRM push (:func:`handlers.crm.api.read_signed_batch`). All or
nothing: any invalid record rejects the request with 400 and every record's problem
(``members[3]: name: empty``), and nothing is stored. ``team_lead`` and ``status`` may be
omitted (the department's leader; active).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy import select

from handlers.contacts.api import Member
from handlers.crm.api import AuthError, read_signed_batch
from handlers.staff.directory import HrRow, apply_hr
from handlers.staff.hrfile import COLUMNS, check_team_leads, member_row

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime

PATH = "/crm/v1/staff"
MAX_MEMBERS = 20_000  # a whole branch network in one push


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def _rows(items: list[Any], known: set[str]) -> tuple[list[HrRow], list[str]]:
    problems: list[tuple[int, str]] = []

    def err(index: int, message: str) -> None:
        problems.append((index, message))

    rows: list[HrRow] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            err(i, "expected an object with " + ", ".join(COLUMNS))
            continue
        unknown = sorted(set(item) - set(COLUMNS))
        bad = [k for k in COLUMNS if item.get(k) is not None and not isinstance(item.get(k), str)]
        if unknown or bad:
            err(i, f"unknown field(s) {', '.join(unknown)}" if unknown else f"{bad[0]}: must be a string")
            continue
        row = member_row({k: str(item.get(k) or "") for k in COLUMNS}, i, err)
        if row is None:
            continue
        if row.userid in seen:
            err(i, f"userid: {row.userid!r} is already members[{seen[row.userid]}]")
            continue
        seen[row.userid] = i
        rows.append(row)
    check_team_leads(rows, seen, known, err)
    return rows, [f"members[{i}]: {message}" for i, message in sorted(problems, key=lambda p: p[0])]


def _endpoint(runtime: Runtime) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        try:
            items = await read_signed_batch(request, runtime, "members", max_records=MAX_MEMBERS)
        except AuthError as exc:
            return _error(exc.status, str(exc))
        async with runtime.sessions() as session:
            known = set((await session.scalars(select(Member.userid))).all())
        rows, errors = _rows(items, known)
        if errors:
            return _error(400, f"{len(errors)} invalid record(s); nothing stored", details=errors[:100])
        async with runtime.sessions() as session, session.begin():
            report = await apply_hr(session, rows, runtime.clock.now())
        return web.json_response({"accepted": len(rows), "added": sorted(report.added),
                                  "updated": sorted(report.updated), "resigned": sorted(report.resigned)})

    return handle


def install(app: web.Application, runtime: Runtime) -> None:
    app.router.add_post(PATH, _endpoint(runtime))
