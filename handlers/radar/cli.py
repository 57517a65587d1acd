"""``scrm radar stats [--material X] [--since DATE] [--by-step] [--json]``: sends, opens, open rate."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from handlers.radar.stats import Counter, counters
from scrm.adapters.db.engine import make_engine, make_sessionmaker
from scrm.kernel.config import Settings


def parse_since(text: str, tz: str) -> datetime:
    """``2026-11-01`` (local midnight) or an ISO datetime (local when it has no offset)."""
    try:
        d = date.fromisoformat(text)
        return datetime.combine(d, time(), ZoneInfo(tz)).astimezone(UTC)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        from scrm.cli_support import UserError

        raise UserError(f"--since {text!r}: expected a date (2026-11-01) or an ISO datetime") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=ZoneInfo(tz))).astimezone(UTC)


def _rate(c: Counter) -> str:
    return "-" if c.open_rate is None else f"{c.open_rate:.1%}"


def render(rows: list[Counter], *, by_step: bool) -> str:
    """A plain table (one line per material or material+step)."""
    head = ["material"] + (["step"] if by_step else []) + ["sends", "opens", "unique", "open_rate"]
    lines = [head] + [[c.material] + ([c.step or "-"] if by_step else [])
                      + [str(c.sends), str(c.opens), str(c.unique_openers), _rate(c)] for c in rows]
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in lines)


async def cmd_radar(args: argparse.Namespace, settings: Settings) -> int:
    since = parse_since(args.since, settings.playbook.timezone) if args.since else None
    engine = make_engine(settings.database.url)
    try:
        async with make_sessionmaker(engine)() as session:
            rows = await counters(session, material=args.material, since=since, by_step=args.by_step)
    finally:
        await engine.dispose()
    if args.json:
        print(json.dumps([{"material": c.material, "step": c.step, "sends": c.sends, "opens": c.opens,
                           "unique_openers": c.unique_openers, "open_rate": c.open_rate} for c in rows],
                         ensure_ascii=False))
    else:
        print(render(rows, by_step=args.by_step))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    r = sub.add_parser("radar", help="customer radar: tracked link counters")
    rsub = r.add_subparsers(dest="radar_command", required=True)
    st = rsub.add_parser("stats", help="sends, opens, unique openers and open rate per material")
    st.add_argument("--material", help="only this material id")
    st.add_argument("--since", help="count from this date or datetime (playbook timezone)")
    st.add_argument("--by-step", action="store_true", help="one line per material and SOP step")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    r.set_defaults(func=cmd_radar)
