"""The file importer streams: chunk by chunk from disk, bounded error memory."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from handlers.crm.importer import MAX_KEPT_ERRORS, import_file
from handlers.crm.models import CrmCustomer
from scrm.adapters.db.engine import make_engine, make_sessionmaker
from scrm.kernel.clock import FakeClock
from scrm.kernel.inbox import Inbox
from tests.conftest import make_settings
from tests.handlers.crm.receiver import RecordingProgress


async def test_import_reads_the_file_a_chunk_at_a_time(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as f:
        f.write("crm_id,tier,products\n")
        for i in range(20_000):
            f.write(f"C{i:06d},V{i % 4},payroll|wealth\n" if i % 10 else f",V{i % 4},\n")  # every 10th bad
    size = path.stat().st_size
    engine = make_engine(sqlite_url)
    sessions = make_sessionmaker(engine)
    clock = FakeClock()
    inbox = Inbox(engine, sessions, make_settings(sqlite_url).inbox, clock)
    progress = RecordingProgress()
    seen: list[str] = []
    chunks = {"n": 0}

    async def on_chunk() -> None:
        chunks["n"] += 1

    try:
        report = await import_file(path, sessions, inbox, clock, chunk=500, progress=progress,
                                   name="big.csv", on_error=seen.append, on_chunk=on_chunk)
        async with sessions() as session:
            stored = await session.scalar(select(func.count()).select_from(CrmCustomer))
    finally:
        await engine.dispose()
    assert (report.rows, report.stored, report.error_count, stored) == (20_000, 18_000, 2_000, 18_000)
    # Stored a chunk after reading a chunk: the first chunk was in the database when a few
    # buffers of the file (not the file) had been read.
    assert chunks["n"] == 40 and len(progress.positions) == 40
    assert progress.positions[0] < size // 20 and progress.positions == sorted(progress.positions)
    # Every error line reaches the sink; the report keeps a bounded number of them.
    assert len(seen) == 2_000 and seen[0] == "big.csv:2: crm_id: Field required"
    assert report.errors == seen[:MAX_KEPT_ERRORS]
