"""The archive intake in a child process, frozen mid-batch so the parent can kill -9 it.

``python -m tests.handlers.compliance.archive_child SPEC.json``: builds the service's runtime on
the sandbox the parent runs (settings as ``tests.support.stack`` makes them, plus
``[compliance]`` from the spec), then pulls batches; when the message ``freeze_at`` has been
stored and reviewed — its batch's transaction still open — it prints ``frozen`` and blocks, so the
parent's SIGKILL lands between storing and committing.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any


async def _run(spec: dict[str, Any]) -> None:
    from handlers.compliance.archive.intake import intake_for
    from scrm.kernel.clock import FakeClock
    from scrm.main import build_runtime
    from tests.support.stack import sandbox_settings

    settings = sandbox_settings(spec["db_url"], spec["api_base"], Path(spec["sop_dir"]), Path(spec["materials_dir"]),
                                compliance=spec["compliance"])
    runtime = build_runtime(settings, clock=FakeClock(datetime.fromisoformat(spec["now"])))
    intake = intake_for(runtime)

    def freeze(seq: int) -> None:
        if seq == spec["freeze_at"]:
            print("frozen", flush=True)
            time.sleep(600)  # blocks the loop with the transaction open, until the SIGKILL

    intake.on_message = freeze
    while await intake.pull():
        pass
    print("drained", flush=True)  # the parent fails the test: the freeze was never reached


if __name__ == "__main__":
    asyncio.run(_run(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))))
