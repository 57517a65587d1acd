"""The SOP calendar: what goes out when over the next days, day by day, within a viewer's scope.

The calendar is what the scheduler will do because it *is* the scheduler's planner: each day is
planned by :class:`handlers.sop.api.DayPlanner` (every slot of the day, on time, against the
database as it is now), the same code the ``sop.due`` jobs and ``scrm sop plan`` run. Quiet
hours, holidays (moved or skipped), expired or unapproved materials, opt-outs, caps and the
managers' daily task limits therefore show exactly as the planner decides them: a step whose
material has expired by its day is listed with its targets as "will be skipped".

What it cannot know: sends planned for earlier days of the window are not in the database yet,
so a customer's weekly and monthly caps are counted against what was really sent, not against
the window's own earlier days (``scrm sop plan`` has the same view). Key-event reminders
(birthdays, maturities) come from CRM events, not from the planner, and are not shown.

Planning a day reads every group and candidate customer (seconds a day on a million customers),
so the bank-wide plan of the next 30 days is computed by the ``console.outlook`` job, once a day
and after each playbook reload, and stored per sender (:mod:`handlers.console.outlook`); each
viewer's calendar is the stored counts of the senders inside their scope (the group owner, the
customer's manager).

Material texts are rendered with the real date of each day and sample values for everything
about one group or customer (see :func:`preview`), marked as such.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.console.reasons import LABELS, reason_kind
from handlers.console.scope import Scope
from handlers.contacts.api import Follow
from handlers.groups.api import GroupChat
from handlers.sop.api import DayPlanner, Planned
from scrm.playbook import VARIABLES, Material, Playbook, TemplateError, date_variables, render_material, render_template
from scrm.playbook.templates import template_fields

WEEKDAYS = "一二三四五六日"
KINDS = ("group", "private", "task", "tag")
#: Why a target is skipped, as the calendar says it (after "将跳过：").
SKIP_LABELS = {
    "holiday": "节假日不发送", "material_expired": "素材已过期", "material_unapproved": "素材未审批或未生效",
    "material_missing": "素材不在素材库", **LABELS,
}
CARRIED_LABEL = "超出客户经理当日任务上限，顺延到下一个有余量的工作日"
#: How people read each template variable (the sample values come from the playbook's own table).
VARIABLE_LABELS = {
    "customer.name": "客户称呼", "customer.remark": "客户备注", "manager.name": "客户经理姓名",
    "group.name": "群名称", "group.payday": "群发薪日", "date.today": "当天日期", "date.month": "当月",
    "crm.payday": "发薪日", "crm.repayment_day": "还款日", "crm.product_name": "产品名称",
    "crm.maturity_date": "到期日", "crm.amount": "金额", "crm.tier": "客户等级", "crm.risk_expiry": "风险评估到期日",
}
_CHUNK = 500  # ids per IN (...) when finding who a skipped target belongs to


def skip_kind(reason: str) -> str:
    """The calendar's finer kind of a skip reason (which material problem, or a holiday)."""
    if reason.startswith("holiday"):
        return "holiday"
    if reason.startswith("material"):
        if "expired" in reason:
            return "material_expired"
        if "not in the library" in reason:
            return "material_missing"
        return "material_unapproved"
    return reason_kind(reason)


# -- material previews ----------------------------------------------------------------------

def preview(material: Material, pb: Playbook, day: date) -> dict[str, Any]:
    """``material`` as a customer would see it on ``day``: the real date, the policy's risk
    disclosure, and a sample value (the playbook's documented example) for every variable about
    one customer, group or manager, each listed in ``samples`` so the page can say so.

    ``segments`` is the text cut where sample values were put in, for the page to mark them.
    """
    real = date_variables(day)
    sample = {**{name: v.example for name, v in VARIABLES.items()}, **real}
    out: dict[str, Any] = {
        "id": material.id, "type": material.type, "title": material.title or material.id, "text": None,
        "segments": [], "link": None, "miniprogram": None, "image": None, "file": None, "quick_reply": None,
        "samples": [], "error": None, "picture": picture_of(material) is not None,
    }
    try:
        shown = render_material(material, sample, pb.policy)
    except TemplateError as exc:  # the executor would skip the send with this reason
        out["error"] = f"template: {exc}"
        return out
    # The same rendering with a marker for each sample value: which ones the material uses, and where.
    marks = {name: f"\x00{name}\x00" for name in VARIABLES if name not in real}
    used = {name for _, text in template_fields(material) for name, mark in marks.items()
            if mark in render_template(text, {**marks, **real})}
    out["text"] = shown.text
    if shown.text is not None:
        try:
            out["segments"] = _segments(render_material(material, {**marks, **real}, pb.policy).text or "")
        except TemplateError:  # markers are longer than the samples: a text near WeCom's limit
            out["segments"] = [{"text": shown.text, "sample": None}]
    if shown.link is not None:
        out["link"] = {"title": shown.link.title, "desc": shown.link.desc, "url": shown.link.url,
                       "cover": shown.link.cover}
    if shown.miniprogram is not None:
        mini = shown.miniprogram
        out["miniprogram"] = {"title": mini.title, "appid": mini.appid, "page": mini.page, "cover": mini.cover}
    for block in ("image", "file"):
        media = getattr(shown, block)
        if media is not None:
            out[block] = {"path": media.path, "url": media.url}
    if shown.quick_reply is not None:
        out["quick_reply"] = {"question": shown.quick_reply.question, "answer": shown.quick_reply.answer}
    out["samples"] = [{"name": n, "label": VARIABLE_LABELS.get(n, n), "value": VARIABLES[n].example}
                      for n in VARIABLES if n in used]
    return out


def picture_of(m: Material) -> str | None:
    """The picture a customer sees with ``m`` when it is a file under materials/: an image, or a
    mini program's cover (a URL cover is not fetched: the console loads no outside content)."""
    if m.image is not None and m.image.path:
        return m.image.path
    if m.miniprogram is not None and not m.miniprogram.cover.startswith(("http://", "https://")):
        return m.miniprogram.cover
    return None


def _segments(marked: str) -> list[dict[str, str | None]]:
    """A text rendered with markers as literal pieces and sample values (``{"text", "sample"}``)."""
    out: list[dict[str, str | None]] = []
    for i, piece in enumerate(marked.split("\x00")):
        if i % 2 == 1 and piece in VARIABLES:  # between two markers: a variable's name
            out.append({"text": VARIABLES[piece].example, "sample": piece})
        elif piece:
            out.append({"text": piece, "sample": None})
    return out


# -- the bank-wide plan ---------------------------------------------------------------------

@dataclass(frozen=True)
class StepInfo:
    """What the playbook says of one step: its time, its SOP's name, the materials it may send."""

    at: time | None
    sop: str
    materials: tuple[str, ...]


def step_index(pb: Playbook) -> dict[tuple[str, str], StepInfo]:
    """(source, step key) → :class:`StepInfo` for every calendar and path step."""
    out: dict[tuple[str, str], StepInfo] = {}
    for cal in pb.calendars.values():
        source, name = f"calendar:{cal.calendar}", cal.name or cal.calendar
        for s in cal.steps:
            out[(source, s.key)] = StepInfo(s.at, name, tuple(m for m in (s.send, s.task) if m))
        for r in cal.recurring:
            out[(source, r.key)] = StepInfo(r.send_time, name, tuple(m for m in (r.send, r.task) if m))
    for path in pb.paths.values():
        source = f"path:{path.path}"
        for p in path.steps:
            found = [m for a in (p, *p.branches) for m in (a.send, a.task) if m]
            out[(source, p.key)] = StepInfo(p.at, path.name, tuple(dict.fromkeys(found)))
    return out


# (day, at "HH:MM", source, step, material or "", outcome, owner): outcome is a kind of KINDS,
# "skip:<skip kind>" or "carried".
Key = tuple[date, str, str, str, str, str, str]


@dataclass
class BankPlan:
    """Every decision of the window, counted per step, outcome and sender (bank-wide)."""

    start: date
    days: int
    counts: Counter[Key] = field(default_factory=Counter)
    reasons: dict[tuple[date, str, str, str], str] = field(default_factory=dict)  # first raw reason per kind


async def plan_bank(db: AsyncSession, pb: Playbook, start: date, days: int) -> BankPlan:
    """Run the planner for ``days`` days from ``start`` and count what it decides.

    Reads only: nothing is written, so it may run beside the service at any time.
    """
    index = step_index(pb)
    plan = BankPlan(start, days)
    pending: list[tuple[Key, str]] = []  # skipped targets whose owner is looked up afterwards
    for offset in range(days):
        day = start + timedelta(days=offset)
        async for d in DayPlanner(pb, day).run(db):
            info = index.get((d.source, d.step))
            if isinstance(d, Planned):
                at = d.at.strftime("%H:%M")
                plan.counts[(day, at, d.source, d.step, d.material or "", d.kind, d.sender)] += 1
                continue
            at = info.at.strftime("%H:%M") if info and info.at else ""
            material = info.materials[0] if info and len(info.materials) == 1 else ""
            if d.carry is not None:  # a task card over the manager's limit: sent on a later workday
                carry = d.carry
                plan.counts[(day, carry.at.strftime("%H:%M"), d.source, d.step, carry.material or "", "carried",
                             carry.sender)] += 1
                continue
            kind = skip_kind(d.reason)
            plan.reasons.setdefault((day, d.source, d.step, kind), d.reason)
            pending.append(((day, at, d.source, d.step, material, f"skip:{kind}", ""), d.target))
    owners = await _owners(db, {target for _, target in pending})
    for key, target in pending:
        plan.counts[(*key[:6], owners.get(target, ""))] += 1
    return plan


async def _owners(db: AsyncSession, targets: set[str]) -> dict[str, str]:
    """Who a skipped target belongs to: a group's owner, else the customer's primary manager
    (the oldest active follow, as the planner picks the sender of a path step)."""
    ids = sorted(targets)
    out: dict[str, str] = {}
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i:i + _CHUNK]
        rows = await db.execute(select(GroupChat.chat_id, GroupChat.owner).where(GroupChat.chat_id.in_(chunk)))
        out.update({c: o for c, o in rows.all()})
        rest = [t for t in chunk if t not in out]
        if rest:
            follows = await db.execute(select(Follow.external_userid, Follow.userid)
                                       .where(Follow.external_userid.in_(rest), Follow.status == "active")
                                       .order_by(Follow.external_userid, Follow.created_at.desc(), Follow.userid))
            out.update({ext: userid for ext, userid in follows.all()})  # the oldest comes last, and wins
    return out


# -- one viewer's calendar ------------------------------------------------------------------

# (day, at, source, step, material or "", outcome): a :data:`Key` without its sender.
ViewKey = tuple[date, str, str, str, str, str]


@dataclass
class ScopedPlan:
    """What one scope sees of a plan: its counts summed over the senders inside the scope."""

    start: date
    days: int
    counts: Counter[ViewKey] = field(default_factory=Counter)
    reasons: dict[tuple[date, str, str, str], str] = field(default_factory=dict)


def scoped(plan: BankPlan, scope: Scope) -> ScopedPlan:
    """``plan`` as ``scope`` sees it: only sends whose sender is a member of ``scope`` count;
    sends with no known sender (a group whose owner left the directory) count for the whole bank
    only."""
    members = None if scope.whole_bank else set(scope.members)
    out = ScopedPlan(plan.start, plan.days, reasons=plan.reasons)
    for (day, at, source, step, material, outcome, owner), n in plan.counts.items():
        if members is None or owner in members:
            out.counts[(day, at, source, step, material, outcome)] += n
    return out


Previews = dict[tuple[str, date], dict[str, Any]]


def calendar_view(plan: BankPlan | ScopedPlan, pb: Playbook, scope: Scope, days: int | None = None, *,
                  previews: Previews | None = None) -> dict[str, Any]:
    """The calendar of ``plan``'s first ``days`` days as ``scope`` sees it (JSON-able, deterministic).

    A :class:`BankPlan` is narrowed to ``scope`` first (:func:`scoped`); a :class:`ScopedPlan`
    (the stored outlook read for the scope) is taken as it is. ``previews``: the material
    previews of ``pb`` made so far, per (material, day), used and added to — they are the same
    for every scope, and making them was most of a first view's work (the page keeps them per
    playbook version: :class:`PreviewCache`); the dicts in it are shared, never to be changed.
    """
    if isinstance(plan, BankPlan):
        plan = scoped(plan, scope)
    days = plan.days if days is None else min(days, plan.days)
    end = plan.start + timedelta(days=days - 1)
    index = step_index(pb)
    rows: dict[tuple[date, str, str, str], dict[str, Any]] = {}
    for (day, at, source, step, material, outcome), n in plan.counts.items():
        if day > end or n == 0:
            continue
        row = rows.get((day, at, source, step))
        if row is None:
            info = index.get((source, step))
            row = rows[(day, at, source, step)] = {
                "at": at, "source": source, "sop": info.sop if info else source, "step": step,
                "materials": set(info.materials if info else ()), **{k: 0 for k in KINDS}, "carried": 0,
                "skips": Counter[str]()}
        if material:
            row["materials"].add(material)
        if outcome.startswith("skip:"):
            row["skips"][outcome[5:]] += n
        else:
            row[outcome] += n
    previews = {} if previews is None else previews

    def shown(mid: str, day: date) -> dict[str, Any]:
        if (mid, day) not in previews:
            m = pb.materials.get(mid)
            previews[(mid, day)] = (preview(m, pb, day) if m is not None else
                                    {"id": mid, "error": f"material {mid!r} not in the library"})
        return previews[(mid, day)]

    out_days: list[dict[str, Any]] = []
    for offset in range(days):
        day = plan.start + timedelta(days=offset)
        steps: list[dict[str, Any]] = []
        for key in sorted(k for k in rows if k[0] == day):
            row = rows[key]
            skips = [{"kind": k, "label": SKIP_LABELS.get(k, k), "count": row["skips"][k],
                      "reason": plan.reasons.get((day, row["source"], row["step"], k), "")}
                     for k in sorted(row["skips"])]
            steps.append({**{k: v for k, v in row.items() if k not in ("materials", "skips")},
                          "materials": sorted(row["materials"]), "skips": skips,
                          "skipped": sum(s["count"] for s in skips),
                          "previews": [shown(m, day) for m in sorted(row["materials"])]})
        totals: dict[str, int] = {k: sum(s[k] for s in steps) for k in (*KINDS, "carried", "skipped")}
        out_days.append({"day": day.isoformat(), "weekday": WEEKDAYS[day.weekday()],
                         "workday": pb.work_calendar.is_workday(day), "holiday": pb.work_calendar.holiday_name(day),
                         "steps": steps, "totals": totals})
    return {"start": plan.start.isoformat(), "end": end.isoformat(), "days": days, "scope": scope.label,
            "totals": {k: sum(d["totals"][k] for d in out_days) for k in (*KINDS, "carried", "skipped")},
            "calendar": out_days}


class PreviewCache:
    """The material previews of the running playbook, per (material, day), in the service
    process: every scope's calendar shows the same ones. A new playbook version starts afresh;
    past ``size`` previews (days go by) it starts afresh too."""

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._version: str | None = None
        self._kept: Previews = {}

    def of(self, version: str) -> Previews:
        if version != self._version or len(self._kept) > self.size:
            self._version, self._kept = version, {}
        return self._kept
