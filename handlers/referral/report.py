"""What ``scrm referral report`` prints: the funnel of referrals by status (pending ones past
their window counted as lapsed), the leaderboard of referrers, the flags ops should look at,
and each segment's super users — the customers whose friends converted most, the lever for that
segment's growth."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Customer
from handlers.lifecycle.api import CustomerSegment

from .models import CONVERTED, PENDING, Referral, ReferralFlag
from .rules import ReferralRules
from .texts import FLAG_LABELS, STATUS_LABELS

LAPSED = "lapsed"  # pending past the window: reported, never stored (the window is the YAML's)


@dataclass(frozen=True)
class Referrer:
    external_userid: str
    name: str
    attributed: int
    converted: int
    rewarded: int  # conversions the referrer was rewarded for (the rest were over the cap)


@dataclass
class Report:
    statuses: dict[str, int] = field(default_factory=dict)  # pending (in window), lapsed, rewarded, capped …
    flags: dict[str, int] = field(default_factory=dict)
    leaderboard: list[Referrer] = field(default_factory=list)
    # (at, reason, friend, referrer, detail), newest first
    flagged: list[tuple[datetime, str, str, str, str]] = field(default_factory=list)
    super_users: dict[str, list[Referrer]] = field(default_factory=dict)  # segment → best referrers

    @property
    def attributed(self) -> int:
        return sum(self.statuses.values())

    @property
    def converted(self) -> int:
        return sum(self.statuses.get(s, 0) for s in CONVERTED)


async def build(session: AsyncSession, rules: ReferralRules, *, now: datetime, top: int = 10,
                flagged: int = 20) -> Report:
    report = Report()
    window = timedelta(days=rules.within_days)
    by_referrer: dict[str, Counter[str]] = defaultdict(Counter)
    for referrer, status, arrived, paid in (await session.execute(
            select(Referral.referrer, Referral.status, Referral.arrived_at, Referral.referrer_rewarded))).all():
        if status == PENDING and arrived + window < now:
            status = LAPSED
        report.statuses[status] = report.statuses.get(status, 0) + 1
        c = by_referrer[referrer]
        c["attributed"] += 1
        c["converted"] += status in CONVERTED
        c["rewarded"] += bool(paid)
    report.flags = {r: int(n) for r, n in (await session.execute(
        select(ReferralFlag.reason, func.count()).group_by(ReferralFlag.reason).order_by(ReferralFlag.reason))).all()}
    report.flagged = [(at, reason, friend, referrer, detail) for at, reason, friend, referrer, detail in (
        await session.execute(select(ReferralFlag.at, ReferralFlag.reason, ReferralFlag.friend, ReferralFlag.referrer,
                                     ReferralFlag.detail)
                              .where(ReferralFlag.reason != "over_cap")
                              .order_by(ReferralFlag.at.desc(), ReferralFlag.id.desc()).limit(flagged))).all()]
    ids = sorted(by_referrer)
    names: dict[str, str] = {}
    segments: dict[str, list[str]] = {}
    for chunk in (ids[i:i + 1000] for i in range(0, len(ids), 1000)):
        names.update((await session.execute(select(Customer.external_userid, Customer.name)
                                            .where(Customer.external_userid.in_(chunk)))).all())
        segments.update((await session.execute(select(CustomerSegment.external_userid, CustomerSegment.segments)
                                               .where(CustomerSegment.external_userid.in_(chunk)))).all())
    everyone = sorted((Referrer(r, names.get(r, ""), c["attributed"], c["converted"], c["rewarded"])
                       for r, c in by_referrer.items()), key=lambda x: (-x.converted, -x.attributed, x.external_userid))
    report.leaderboard = everyone[:top]
    per_segment: dict[str, list[Referrer]] = defaultdict(list)
    for r in everyone:  # already best first
        for segment in segments.get(r.external_userid) or ():
            if r.converted and len(per_segment[segment]) < rules.super_users:
                per_segment[segment].append(r)
    report.super_users = dict(sorted(per_segment.items()))
    return report


def render(report: Report, tz: ZoneInfo) -> list[str]:
    """The report as printed; times in ``tz`` (the playbook's)."""
    lines = [f"推荐好友 {report.attributed} 人，已转化 {report.converted} 人"
             + (f"（{report.converted / report.attributed:.1%}）" if report.attributed else "")]
    labels = {**STATUS_LABELS, LAPSED: "窗口期内未转化"}
    for status in ("pending", "rewarded", "capped", LAPSED, "late", "rejected"):
        lines.append(f"  {labels[status]} ({status}): {report.statuses.get(status, 0)}")
    lines.append("推荐排行：")
    for i, r in enumerate(report.leaderboard, 1):
        lines.append(f"  {i}. {r.name or r.external_userid} ({r.external_userid})  推荐 {r.attributed}  "
                     f"转化 {r.converted}  获奖 {r.rewarded}")
    if not report.leaderboard:
        lines.append("  （暂无）")
    lines.append("各分群超级用户：")
    for segment, best in report.super_users.items():
        lines.append(f"  {segment}: " + "、".join(f"{r.name or r.external_userid}（转化 {r.converted}）" for r in best))
    if not report.super_users:
        lines.append("  （暂无）")
    total = sum(report.flags.values())
    lines.append(f"风控标记 {total} 条：" + ("，".join(f"{FLAG_LABELS.get(k, k)} {n}" for k, n in report.flags.items())
                                          or "无"))
    for at, reason, friend, referrer, detail in report.flagged:
        lines.append(f"  {at.astimezone(tz):%Y-%m-%d %H:%M} {FLAG_LABELS.get(reason, reason)}: 好友 {friend} 推荐人 "
                     f"{referrer or '-'}  {detail}")
    return lines
