"""The watched CRM drop folder: complete files only, one claimer, reports, crash take-over."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from handlers.crm import store
from handlers.crm.dropfolder import DropFolder, DropResult
from handlers.crm.events import CrmChanged
from handlers.crm.models import CrmCustomer, CrmEvent
from scrm.kernel.models import InboxEvent
from tests.conftest import make_settings
from tests.handlers.crm.receiver import CrmStack, crm_stack
from tests.support.service import running_service, spine_routers, wait_until


def _folder(c: CrmStack, root: Path, **kw: Any) -> DropFolder:
    rt = c.s.runtime
    return DropFolder(root, rt.sessions, rt.inbox, c.s.clock, **kw)


async def _count(c: CrmStack, model: Any) -> int:
    async with c.s.runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _changed_events(c: CrmStack) -> int:
    async with c.s.runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(InboxEvent)
                                        .where(InboxEvent.event == CrmChanged.KIND)) or 0)


def _files(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.is_file())


async def test_drop_folder_imports_complete_files_once(db_url: str, tmp_path: Path) -> None:
    async with crm_stack(db_url, tmp_path) as c:
        s, ids = c.s, c.s.ids
        wang, liu = ids.customers["王芳"], ids.customers["刘洋"]
        drop = tmp_path / "drop"
        drop.mkdir()
        a, b = _folder(c, drop), _folder(c, drop)  # two instances watching one folder
        csv = drop / "customers.csv"
        csv.write_text("crm_id,external_userid,tier,products\n"
                       f"C001,{wang},V2,payroll\n", encoding="utf-8")
        (drop / ".customers2.csv").write_text("crm_id\nX1\n")  # being uploaded under a hidden name
        (drop / "events.jsonl.tmp").write_text("{}\n")
        (drop / "notes.txt").write_text("not a CRM file")
        assert await a.poll() == [] and await b.poll() == []  # first sight: maybe still being written
        with csv.open("a", encoding="utf-8") as f:  # ... and it was
            f.write(",,V1,\n"  # line 3: no crm_id
                    f"C002,{liu},VIP,mortgage\n")
        assert await a.poll() == [] and await b.poll() == []  # changed since: wait one more poll
        results: list[DropResult] = [r for rs in await asyncio.gather(a.poll(), b.poll()) for r in rs]
        assert [(r.name, r.outcome) for r in results] == [("customers.csv", "failed")]  # one claimer
        report = results[0].report
        assert report is not None and (report.rows, report.stored, report.error_count) == (3, 2, 1)
        # A bad row sends the file to failed/ with its report beside it; the good rows are kept.
        assert _files(drop) == [".customers2.csv", "events.jsonl.tmp", "notes.txt"]
        failed = _files(drop / "failed")
        assert len(failed) == 2 and failed[0].endswith("-customers.csv")
        assert failed[1] == failed[0] + ".report.txt"
        lines = (drop / "failed" / failed[1]).read_text(encoding="utf-8").splitlines()
        assert lines[0].startswith("customers.csv:3: crm_id: ")
        assert lines[1] == "customers.csv: 3 rows, 2 stored, 2 customers changed, 0 new events, 1 errors"
        assert (drop / "failed" / failed[0]).read_text(encoding="utf-8") == csv_text(wang, liu)
        assert _files(drop / "processing") == []
        assert await _count(c, CrmCustomer) == 2
        await s.run()
        assert {"客户等级/V2", "产品持有/代发"} <= c.tag_names("zhangwei", wang)
        assert {"客户等级/VIP", "产品持有/按揭"} <= c.tag_names("zhangwei", liu)
        # An upload finished by renaming: two polls later it is imported; clean files go to done/.
        event = ('{"event_id": "E1", "crm_id": "C001", "kind": "large_transfer", '
                 '"at": "2026-11-02T09:30:00+08:00", "amount": 500000}\n')
        (drop / "events.jsonl.tmp").write_text(event * 2, encoding="utf-8")
        (drop / "events.jsonl.tmp").rename(drop / "events.jsonl")
        assert await b.poll() == []
        [done] = await b.poll()
        assert done.outcome == "done" and done.path.parent == drop / "done"
        assert (drop / "done" / (done.path.name + ".report.txt")).read_text(encoding="utf-8") == \
            "events.jsonl: 2 rows, 2 stored, 0 customers changed, 1 new events, 0 errors\n"
        assert await _count(c, CrmEvent) == 1
        # The same file dropped again later imports as a repeat: nothing new, nothing overwritten.
        (drop / "events.jsonl").write_text(event, encoding="utf-8")
        assert await a.poll() == []
        [again] = await a.poll()
        assert again.outcome == "done" and again.report is not None and again.report.new_events == 0
        assert len(_files(drop / "done")) == 4
        assert _files(drop) == [".customers2.csv", "notes.txt"]


def csv_text(wang: str, liu: str) -> str:
    return ("crm_id,external_userid,tier,products\n"
            f"C001,{wang},V2,payroll\n"
            ",,V1,\n"
            f"C002,{liu},VIP,mortgage\n")


class Killed(BaseException):
    """The process dies: no except clause of the service runs."""


async def test_drop_folder_takes_over_after_a_crash(db_url: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    async with crm_stack(db_url, tmp_path) as c:
        s = c.s
        exts = list(s.ids.customers.values())[:7]
        drop = tmp_path / "drop"
        drop.mkdir()
        (drop / "c.csv").write_text("crm_id,external_userid,tier\n"
                                    + "".join(f"K{i},{e},V3\n" for i, e in enumerate(exts)), encoding="utf-8")
        a = _folder(c, drop, chunk=2, lease_s=300)
        b = _folder(c, drop, chunk=2, lease_s=300)
        real_upsert = store.upsert_customers
        chunks = {"n": 0}

        async def dying_upsert(*args: Any, **kw: Any) -> Any:
            chunks["n"] += 1
            if chunks["n"] == 3:
                raise Killed
            return await real_upsert(*args, **kw)

        monkeypatch.setattr(store, "upsert_customers", dying_upsert)
        assert await a.poll() == []
        with pytest.raises(Killed):
            await a.poll()  # dies in the third chunk; two chunks (4 rows) are stored
        monkeypatch.setattr(store, "upsert_customers", real_upsert)
        assert await _count(c, CrmCustomer) == 4 and await _changed_events(c) == 2
        claimed = _files(drop / "processing")  # the claim, its lease and the report so far stay behind
        assert claimed[0].endswith("-c.csv") and claimed[1:] == [claimed[0] + ".lease", claimed[0] + ".report.part"]
        assert await b.poll() == []  # a's lease still runs
        s.clock.advance(301)
        [result] = await b.poll()  # taken over and imported again from the start
        assert result.outcome == "done" and result.report is not None
        assert (result.report.rows, result.report.stored, result.report.changed) == (7, 7, 3)
        assert await _count(c, CrmCustomer) == 7
        assert await _changed_events(c) == 4  # rows already stored queued nothing again
        assert _files(drop / "processing") == [] and _files(drop / "done") == [
            result.path.name, result.path.name + ".report.txt"]
        await s.run()
        assert set(c.mark_tag_pairs().values()) == {1}
        assert all("客户等级/V3" in c.tag_names(u, e) for u, e in c.mark_tag_pairs())


async def test_drop_folder_retries_then_gives_up(sqlite_url: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    async with crm_stack(sqlite_url, tmp_path) as c:
        drop = tmp_path / "drop"
        drop.mkdir()
        (drop / "c.jsonl").write_text('{"crm_id": "K1", "tier": "V1"}\n', encoding="utf-8")
        folder = _folder(c, drop, max_attempts=2)

        async def broken(*args: Any, **kw: Any) -> Any:
            raise RuntimeError("database unavailable")

        monkeypatch.setattr(store, "upsert_customers", broken)
        assert await folder.poll() == []
        [first] = await folder.poll()
        assert first.outcome == "retry" and "attempt 1" in (first.error or "")
        [second] = await folder.poll()  # retried at once by the next poll, and failing again
        assert second.outcome == "failed"
        [report] = [n for n in _files(drop / "failed") if n.endswith(".report.txt")]
        assert (drop / "failed" / report).read_text(encoding="utf-8") == (
            "c.jsonl: import failed (attempt 2): RuntimeError: database unavailable\n")
        assert _files(drop / "processing") == []
        # A file that is not CSV/JSONL inside (no crm_id column) fails at once, with the reason.
        monkeypatch.undo()
        (drop / "bad.csv").write_text("id,tier\n1,V1\n", encoding="utf-8")
        await folder.poll()
        [bad] = await folder.poll()
        assert bad.outcome == "failed" and bad.error == "bad.csv:1: no crm_id column in the header row"


async def test_service_runs_the_drop_folder_worker_when_configured(sqlite_url: str, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    settings = make_settings(sqlite_url, crm={"inbox_dir": str(drop), "inbox_poll_s": 0.02})
    async with running_service(settings, workers=True, routers=spine_routers()) as (runtime, _):
        assert runtime.workers_alive()["crm-dropfolder"]
        (drop / "c.csv").write_text("crm_id,tier\nK1,V1\nK2,V2\n", encoding="utf-8")

        async def imported() -> bool:
            return (drop / "done").is_dir() and len(_files(drop / "done")) == 2

        await wait_until(imported)
        async with runtime.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(CrmCustomer)) == 2
    async with running_service(make_settings(sqlite_url), workers=True, routers=spine_routers()) as (runtime, _):
        assert "crm-dropfolder" not in runtime.workers_alive()
