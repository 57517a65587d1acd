"""What ``scrm membership report`` prints: the ledger's audit (every balance equals the sum of
its entries, none negative), the pyramid (members per level, highest first), the level flows
(ups and downs per local month, and between which levels), the points outstanding (the bank's
liability: spendable points; points held by redemptions not yet answered are shown apart, they
are on their way out), the redemptions and the top earners."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import (
    GROWTH,
    POINTS,
    RESERVED,
    MembershipAccount,
    MembershipEntry,
    MembershipLevelChange,
    MembershipRedemption,
)
from .rules import Membership


@dataclass(frozen=True)
class Mismatch:
    external_userid: str
    kind: str
    balance: int
    ledger: int


@dataclass
class Report:
    members: int = 0
    levels: dict[str, int] = field(default_factory=dict)  # YAML order; unknown (renamed) levels after
    points_outstanding: int = 0  # spendable: the liability
    points_reserved: int = 0  # held by redemptions the fulfilment system has not answered
    growth_total: int = 0
    # (local month "YYYY-MM", direction, previous level, level) → moves, from ``since`` on
    flows: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    redemptions: dict[str, tuple[int, int]] = field(default_factory=dict)  # state → (count, points)
    top: list[tuple[str, int, int, str]] = field(default_factory=list)  # (member, growth, points, level)
    mismatches: list[Mismatch] = field(default_factory=list)
    negative: list[str] = field(default_factory=list)


async def audit(session: AsyncSession) -> tuple[list[Mismatch], list[str]]:
    """Balances that differ from their ledger, and members with a negative balance."""
    sums: dict[tuple[str, str], int] = {(c, k): int(n) for c, k, n in (await session.execute(
        select(MembershipEntry.external_userid, MembershipEntry.kind, func.sum(MembershipEntry.amount))
        .group_by(MembershipEntry.external_userid, MembershipEntry.kind))).all()}
    mismatches: list[Mismatch] = []
    negative: list[str] = []
    accounts = (await session.execute(select(MembershipAccount.external_userid, MembershipAccount.points,
                                             MembershipAccount.growth, MembershipAccount.reserved)
                                      .order_by(MembershipAccount.external_userid)))
    known: set[str] = set()
    for c, points, growth, reserved in accounts.all():
        known.add(c)
        for kind, balance in ((POINTS, points), (GROWTH, growth), (RESERVED, reserved)):
            ledger = sums.get((c, kind), 0)
            if balance != ledger:
                mismatches.append(Mismatch(c, kind, balance, ledger))
        if points < 0 or growth < 0 or reserved < 0:
            negative.append(c)
    for (c, kind), ledger in sorted(sums.items()):
        if c not in known:
            mismatches.append(Mismatch(c, kind, 0, ledger))
    return mismatches, negative


async def flows(session: AsyncSession, since: date, tz: ZoneInfo) -> Counter[tuple[str, str, str, str]]:
    """Level moves from local day ``since`` on, by local month, direction and levels."""
    start = datetime.combine(since, time(0), tz)
    out: Counter[tuple[str, str, str, str]] = Counter()
    rows = await session.execute(select(MembershipLevelChange.at, MembershipLevelChange.direction,
                                        MembershipLevelChange.previous, MembershipLevelChange.level)
                                 .where(MembershipLevelChange.at >= start))
    for at, direction, previous, level in rows.all():
        out[(at.astimezone(tz).strftime("%Y-%m"), direction, previous, level)] += 1
    return out


def since_months(today: date, months: int) -> date:
    """The first day of the month ``months - 1`` months before ``today``'s: the flows of
    ``months`` months, this one included."""
    since = today.replace(day=1)
    for _ in range(max(0, months - 1)):
        since = (since - timedelta(days=1)).replace(day=1)
    return since


def pyramid(levels: Mapping[str, int], rules: Membership) -> list[tuple[str, str, int, float | None]]:
    """(level, label, members, share of all members) for ``levels`` (members per level, YAML
    order), highest level first; a share is None when there are no members."""
    labels = {lv.name: lv.label for lv in rules.levels}
    members = sum(levels.values())
    return [(name, labels.get(name, name), n, n / members if members else None)
            for name, n in reversed(list(levels.items()))]


async def build(session: AsyncSession, rules: Membership, *, top: int = 10, since: date | None = None,
                tz: ZoneInfo | None = None) -> Report:
    """The report; level flows from ``since`` (local day in ``tz``) when given."""
    report = Report()
    report.levels = {lv.name: 0 for lv in rules.levels}
    for level, n in (await session.execute(select(MembershipAccount.level, func.count())
                                           .group_by(MembershipAccount.level))).all():
        report.levels[level] = int(n)
    report.members = sum(report.levels.values())
    points, growth, reserved = (await session.execute(select(
        func.coalesce(func.sum(MembershipAccount.points), 0), func.coalesce(func.sum(MembershipAccount.growth), 0),
        func.coalesce(func.sum(MembershipAccount.reserved), 0)))).one()
    report.points_outstanding, report.growth_total, report.points_reserved = int(points), int(growth), int(reserved)
    if since is not None and tz is not None:
        report.flows = await flows(session, since, tz)
    report.redemptions = {state: (int(n), int(p)) for state, n, p in (await session.execute(
        select(MembershipRedemption.state, func.count(), func.coalesce(func.sum(MembershipRedemption.points), 0))
        .group_by(MembershipRedemption.state))).all()}
    report.top = [(c, int(g), int(p), lv) for c, g, p, lv in (await session.execute(
        select(MembershipAccount.external_userid, MembershipAccount.growth, MembershipAccount.points,
               MembershipAccount.level)
        .order_by(MembershipAccount.growth.desc(), MembershipAccount.external_userid).limit(top))).all()]
    report.mismatches, report.negative = await audit(session)
    return report


REDEMPTION_STATES = {"reserved": "待确认", "confirmed": "已兑换", "cancelled": "已取消"}


def render(report: Report, rules: Membership) -> list[str]:
    labels = {lv.name: lv.label for lv in rules.levels}
    lines = [f"会员 {report.members} 人；积分余额（负债）{report.points_outstanding:,}；"
             f"兑换冻结 {report.points_reserved:,}；成长值合计 {report.growth_total:,}", "会员金字塔（由高到低）："]
    for name, label, n, share in pyramid(report.levels, rules):
        lines.append(f"  {label} ({name}): {n} ({f'{share:.1%}' if share is not None else '-'})")
    if report.flows:
        lines.append("等级流动：")
        for month in sorted({m for m, *_ in report.flows}):
            ups = sum(n for (m, d, *_), n in report.flows.items() if m == month and d == "up")
            downs = sum(n for (m, d, *_), n in report.flows.items() if m == month and d == "down")
            moves = "，".join(f"{labels.get(p, p)}→{labels.get(lv, lv)} {n}" for (m, _, p, lv), n
                             in sorted(report.flows.items()) if m == month)
            lines.append(f"  {month}: 升级 {ups}，降级 {downs}（{moves}）")
    if report.redemptions:
        lines.append("积分兑换：" + "；".join(
            f"{REDEMPTION_STATES.get(s, s)} {n} 笔 {p:,} 积分" for s, (n, p) in sorted(report.redemptions.items())))
    lines.append("成长值前列：")
    for c, growth, points, level in report.top:
        lines.append(f"  {c}  成长值 {growth:,}  积分 {points:,}  {labels.get(level, level)}")
    if report.mismatches or report.negative:
        lines.append(f"账本核对：{len(report.mismatches)} 处余额与流水不符，{len(report.negative)} 个负余额")
        lines += [f"  {m.external_userid} {m.kind}: 余额 {m.balance} ≠ 流水合计 {m.ledger}" for m in report.mismatches]
    else:
        lines.append("账本核对：每个余额都等于其流水合计，无负余额")
    return lines
