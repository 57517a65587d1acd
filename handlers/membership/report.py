"""What ``scrm membership report`` prints: the ledger's audit (every balance equals the sum of
its entries, none negative), the level distribution, the points outstanding (the bank's
liability) and the top earners."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import GROWTH, POINTS, MembershipAccount, MembershipEntry
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
    points_outstanding: int = 0
    growth_total: int = 0
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
                                             MembershipAccount.growth).order_by(MembershipAccount.external_userid)))
    known: set[str] = set()
    for c, points, growth in accounts.all():
        known.add(c)
        for kind, balance in ((POINTS, points), (GROWTH, growth)):
            ledger = sums.get((c, kind), 0)
            if balance != ledger:
                mismatches.append(Mismatch(c, kind, balance, ledger))
        if points < 0 or growth < 0:
            negative.append(c)
    for (c, kind), ledger in sorted(sums.items()):
        if c not in known:
            mismatches.append(Mismatch(c, kind, 0, ledger))
    return mismatches, negative


async def build(session: AsyncSession, rules: Membership, *, top: int = 10) -> Report:
    report = Report()
    report.levels = {lv.name: 0 for lv in rules.levels}
    for level, n in (await session.execute(select(MembershipAccount.level, func.count())
                                           .group_by(MembershipAccount.level))).all():
        report.levels[level] = int(n)
    report.members = sum(report.levels.values())
    points, growth = (await session.execute(select(func.coalesce(func.sum(MembershipAccount.points), 0),
                                                   func.coalesce(func.sum(MembershipAccount.growth), 0)))).one()
    report.points_outstanding, report.growth_total = int(points), int(growth)
    report.top = [(c, int(g), int(p), lv) for c, g, p, lv in (await session.execute(
        select(MembershipAccount.external_userid, MembershipAccount.growth, MembershipAccount.points,
               MembershipAccount.level)
        .order_by(MembershipAccount.growth.desc(), MembershipAccount.external_userid).limit(top))).all()]
    report.mismatches, report.negative = await audit(session)
    return report


def render(report: Report, rules: Membership) -> list[str]:
    labels = {lv.name: lv.label for lv in rules.levels}
    lines = [f"会员 {report.members} 人；积分余额（负债）{report.points_outstanding:,}；"
             f"成长值合计 {report.growth_total:,}", "等级分布："]
    for name, n in report.levels.items():
        share = f"{n / report.members:.1%}" if report.members else "-"
        lines.append(f"  {labels.get(name, name)} ({name}): {n} ({share})")
    lines.append("成长值前列：")
    for c, growth, points, level in report.top:
        lines.append(f"  {c}  成长值 {growth:,}  积分 {points:,}  {labels.get(level, level)}")
    if report.mismatches or report.negative:
        lines.append(f"账本核对：{len(report.mismatches)} 处余额与流水不符，{len(report.negative)} 个负余额")
        lines += [f"  {m.external_userid} {m.kind}: 余额 {m.balance} ≠ 流水合计 {m.ledger}" for m in report.mismatches]
    else:
        lines.append("账本核对：每个余额都等于其流水合计，无负余额")
    return lines
