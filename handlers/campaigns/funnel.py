"""The funnel of one campaign and what it cost: targeted → reached → opened → converted →
referred, per variant and by branch, team or manager.

Every figure counts distinct customers, from what the SOP engine recorded when it wrote each
channel's slot (``campaign_touch``, one row per channel and customer):

* ``targeted``: customers of the audience a channel was planned for (sent, held out or skipped
  by the contact policy — quiet hours, caps, opt-out, suitability …, counted in ``skips``);
* ``reached``: customers sent at least one message or task card (``sent``), or to whom a Moments
  post became visible (``visible``: the manager they are credited to published it; a Moments
  post is not a message, so it is no send and costs no ``per_send``; a customer whose manager
  was asked but has not published is ``asked``: targeted, not reached);
* ``opened``: reached customers who opened a tracked link of the campaign
  (``radar_click.occurrence`` ``sop:campaign:<name>:<channel>@<customer>:<day>``);
* ``converted``: reached customers for whom the CRM reported an event of the goal's kind
  (``crm_event`` through ``binding``) after their first send and at most ``within_days`` after
  it — the rule of the SOP effect page and the experiment report;
* ``referred``: friends attributed to a reached customer by the referral feature (MGM) who
  arrived after the first send and within the same window, not refused as fraud later. The
  referral feature (``handlers/referral``, built in parallel) keeps one row per attributed friend
  in its ``referral`` table: ``friend`` and ``referrer`` (external_userids), ``arrived_at``, and
  ``status`` (``rejected``: found to be fraud). It is read by table name, as the member level is
  (the referral feature requires the SOP engine, which requires this one); without the table
  (a deployment without referral) the figure is 0.

Money: ``sends`` × ``cost.per_send`` plus ``converted`` × ``cost.per_conversion``, and that total
per converted customer (None with no conversion) — exact decimals, rounded to cents when shown.

Per variant the same figures follow the customer's arm (``experiment_exposure``: a customer the
policy skipped was never exposed and is in no arm); a holdout customer is targeted, never
reached, and "converts" when the goal event follows the moment they were held out (the baseline
the variants are compared with). By ``manager``: the manager the customer's first touch was
credited to (the sender, or for a skip the primary manager then); ``team``: that manager's
department path (``分行/支行/团队``); ``branch``: its first two levels.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, TypeVar

from sqlalchemy import String, column, inspect, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Member
from handlers.crm.api import Binding, CrmEvent
from handlers.radar.api import RadarClick
from scrm.adapters.db.types import UTCDateTime

from .campaign import SOURCE_PREFIX, Campaign, from_spec
from .campaign_book import HOLDOUT_TOUCH, SENT
from .experiments import HOLDOUT
from .models import Campaign as CampaignRow
from .models import CampaignTouch, ExperimentExposure
from .moments import ASKED, VISIBLE, moment_channels

By = Literal["branch", "team", "manager"]
BY: tuple[By, ...] = ("branch", "team", "manager")
CENT = Decimal("0.01")
_CHUNK = 500
T = TypeVar("T")
REFERRAL_TABLE = "referral"
REFERRALS = table(REFERRAL_TABLE, column("referrer", String), column("friend", String),
                  column("arrived_at", UTCDateTime(timezone=True)), column("status", String))
REFERRAL_REJECTED = "rejected"


class UnknownCampaign(LookupError):
    pass


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i:i + _CHUNK]


async def campaign_named(session: AsyncSession, name: str) -> Campaign:
    row = await session.get(CampaignRow, name)
    if row is None:
        known = list(await session.scalars(select(CampaignRow.name).order_by(CampaignRow.name)))
        names = ", ".join(known) or "none yet (the service stores them from sop/campaigns/)"
        raise UnknownCampaign(f"no campaign {name!r}; known: {names}")
    return from_spec(row.name, row.spec, row.origin)


async def converted_after(session: AsyncSession, starts: dict[str, datetime], kind: str,
                          within: timedelta) -> set[str]:
    """Customers of ``starts`` with a CRM event of ``kind`` in ``(start, start + within]``."""
    customers = sorted(starts)
    crm_ids: dict[str, list[str]] = defaultdict(list)
    for chunk in _chunks(customers):
        for crm_id, ext in (await session.execute(select(Binding.crm_id, Binding.external_userid)
                                                  .where(Binding.external_userid.in_(chunk)))).all():
            crm_ids[ext].append(crm_id)
    first = min(starts.values(), default=None)
    events: dict[str, list[datetime]] = defaultdict(list)
    for chunk in _chunks(sorted({c for ids in crm_ids.values() for c in ids})):
        for crm_id, at in (await session.execute(select(CrmEvent.crm_id, CrmEvent.at).where(
                CrmEvent.crm_id.in_(chunk), CrmEvent.kind == kind, CrmEvent.at > first))).all():
            events[crm_id].append(at)
    return {c for c, start in starts.items()
            if any(start < t <= start + within for cid in crm_ids.get(c, ()) for t in events.get(cid, ()))}


async def _opened(session: AsyncSession, name: str) -> set[str]:
    prefix = f"sop:{SOURCE_PREFIX}{name}:"
    rows = await session.scalars(select(RadarClick.occurrence).where(RadarClick.occurrence.startswith(prefix,
                                                                                                      autoescape=True)))
    # <channel>@<customer>:<day>: the customer sits between the last "@" and the last ":".
    return {occ.rpartition("@")[2].rpartition(":")[0] for occ in rows if occ and "@" in occ}


async def _referred(session: AsyncSession, firsts: dict[str, datetime], within: timedelta) -> dict[str, int]:
    """Friends attributed to each reached customer within the window (0 without the table)."""
    exists = await session.run_sync(lambda s: inspect(s.connection()).has_table(REFERRAL_TABLE))
    out: dict[str, int] = defaultdict(int)
    if not exists:
        return out
    for chunk in _chunks(sorted(firsts)):
        rows = await session.execute(select(REFERRALS.c.referrer, REFERRALS.c.arrived_at)
                                     .where(REFERRALS.c.referrer.in_(chunk), REFERRALS.c.status != REFERRAL_REJECTED))
        for referrer, at in rows.all():
            start = firsts[referrer]
            if start < at <= start + within:
                out[referrer] += 1
    return out


def unit_of(by: By, manager: str, department: str) -> str:
    if by == "manager":
        return manager or "-"
    parts = [p for p in department.split("/") if p]
    if not parts:
        return "-"
    return "/".join(parts[:2] if by == "branch" else parts[:3])


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(CENT))


class _Tally:
    """One row of figures over a set of customers."""

    def __init__(self) -> None:
        self.targeted: set[str] = set()
        self.reached: set[str] = set()
        self.opened: set[str] = set()
        self.converted: set[str] = set()
        self.referred = 0
        self.sends = 0

    def as_json(self, c: Campaign) -> dict[str, Any]:
        spent = c.cost.per_send * self.sends + c.cost.per_conversion * len(self.converted)
        return {"targeted": len(self.targeted), "reached": len(self.reached), "opened": len(self.opened),
                "converted": len(self.converted), "referred": self.referred, "sends": self.sends,
                "cost": _money(spent),
                "cost_per_conversion": _money(spent / len(self.converted)) if self.converted else None}


async def campaign_report(session: AsyncSession, name: str, now: datetime, *, by: By | None = None) -> dict[str, Any]:
    """The campaign's funnel and money as plain JSON data (``scrm campaign report NAME --json``)."""
    c = await campaign_named(session, name)
    touches = (await session.execute(select(CampaignTouch.customer, CampaignTouch.channel, CampaignTouch.outcome,
                                            CampaignTouch.reason, CampaignTouch.manager, CampaignTouch.at)
                                     .where(CampaignTouch.campaign == c.name)
                                     .order_by(CampaignTouch.at, CampaignTouch.id))).all()
    first_sent: dict[str, datetime] = {}
    held: dict[str, datetime] = {}
    credited: dict[str, str] = {}
    sends: dict[str, int] = defaultdict(int)
    skips: dict[str, int] = defaultdict(int)
    for customer, _, outcome, reason, manager, at in touches:
        credited.setdefault(customer, manager)
        if outcome == SENT:
            first_sent.setdefault(customer, at)
            sends[customer] += 1
        elif outcome == VISIBLE:  # ``at``: when the post was seen published (touches come by time)
            first_sent.setdefault(customer, at)
        elif outcome == ASKED:
            pass  # targeted; reached once their manager publishes the post
        elif outcome == HOLDOUT_TOUCH:
            held.setdefault(customer, at)
        else:
            skips[(reason or "").split(":")[0].split(" ")[0] or "other"] += 1
    within = timedelta(days=c.goal.within_days)
    converted = await converted_after(session, {**held, **first_sent}, c.goal.event, within)
    opened = await _opened(session, c.name) & set(first_sent)
    referred = await _referred(session, first_sent, within)
    variant_of: dict[str, str] = {}
    if c.experiment is not None:
        rows = await session.execute(select(ExperimentExposure.customer, ExperimentExposure.variant)
                                     .where(ExperimentExposure.experiment == c.experiment.name))
        variant_of = {cu: v for cu, v in rows.all()}

    def tally(customers: Iterable[str]) -> _Tally:
        t = _Tally()
        for cu in customers:
            t.targeted.add(cu)
            if cu in first_sent:
                t.reached.add(cu)
                t.sends += sends[cu]
                t.opened |= {cu} & opened
                t.converted |= {cu} & converted
                t.referred += referred.get(cu, 0)
        return t

    customers = sorted(credited)
    total = tally(customers)
    out: dict[str, Any] = {
        "campaign": c.name, "label": c.label, "window": [c.start.isoformat(), c.end.isoformat()],
        "goal": c.goal.model_dump(), "currency": c.cost.currency,
        "cost_rule": {"per_send": _money(c.cost.per_send), "per_conversion": _money(c.cost.per_conversion)},
        "funnel": total.as_json(c), "skips": dict(sorted(skips.items())),
        "experiment": c.experiment.name if c.experiment else None, "variants": [], "by": None, "rows": [],
        "moments": await moment_channels(session, c.name)}
    if c.experiment is not None:
        arms = [v.name for v in c.experiment.variants] + ([HOLDOUT] if c.experiment.holdout else [])
        for arm in arms:
            members = [cu for cu in customers if variant_of.get(cu) == arm]
            row = {"variant": arm, **tally(members).as_json(c)}
            if arm == HOLDOUT:
                row["converted"] = len(converted & set(held) & set(members))
            out["variants"].append(row)
    if by is not None:
        departments = await _departments(session, {m for m in credited.values() if m})
        groups: dict[str, list[str]] = defaultdict(list)
        for cu in customers:
            m = credited[cu]
            groups[unit_of(by, m, departments.get(m, ""))].append(cu)
        out["by"] = by
        out["rows"] = [{by: unit, **tally(members).as_json(c)} for unit, members in sorted(groups.items())]
    return out


async def _departments(session: AsyncSession, managers: set[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    ids = sorted(managers)
    for chunk in _chunks(ids):
        rows = await session.execute(select(Member.userid, Member.department).where(Member.userid.in_(chunk)))
        out.update({u: d or "" for u, d in rows.all()})
    return out


def render(report: dict[str, Any]) -> list[str]:
    """The report as lines for a terminal."""
    goal, cur = report["goal"], report["currency"]
    f = report["funnel"]
    lines = [f"campaign {report['campaign']} {report['label']} ({report['window'][0]}..{report['window'][1]}): "
             f"goal {goal['event']} within {goal['within_days']} days; cost {report['cost_rule']['per_send']} {cur} "
             f"per send, {report['cost_rule']['per_conversion']} {cur} per conversion",
             f"funnel: targeted {f['targeted']} → reached {f['reached']} → opened {f['opened']} → converted "
             f"{f['converted']} → referred {f['referred']}",
             f"money: {f['sends']} sends, total {f['cost']} {cur}, per conversion "
             f"{f['cost_per_conversion'] or '-'} {cur}"]
    for m in report.get("moments") or []:
        refused = f", {m['refused']} refused by WeCom" if m["refused"] else ""
        lines.append(f"moments {m['channel']}: published by {m['published']} of {m['asked']} managers asked"
                     f"{refused}; visible to {m['visible_to']} customers of the audience ({m['state']}"
                     f"{': ' + m['error'] if m['error'] else ''})")
    if report["skips"]:
        lines.append("skipped: " + ", ".join(f"{k} {n}" for k, n in report["skips"].items()))
    head = f"{'targeted':>9}{'reached':>9}{'opened':>8}{'converted':>10}{'referred':>9}{'cost':>12}{'per conv.':>11}"

    def row(label: str, r: dict[str, Any]) -> str:
        return (f"{label:<24}{r['targeted']:>9}{r['reached']:>9}{r['opened']:>8}{r['converted']:>10}"
                f"{r['referred']:>9}{r['cost']:>12}{r['cost_per_conversion'] or '-':>11}")

    if report["variants"]:
        lines += [f"experiment {report['experiment']} (lift and interval: scrm experiment report "
                  f"{report['experiment']})", f"{'variant':<24}{head}"]
        lines += [row(r["variant"], r) for r in report["variants"]]
    if report["by"]:
        lines.append(f"{report['by']:<24}{head}")
        lines += [row(r[report["by"]], r) for r in report["rows"]]
    return lines
