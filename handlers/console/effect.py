"""The SOP effect figures (SOP效果): per SOP and per step, over a period of days, how many targets
the step was planned for and how far they got — sent, skipped (by reason), delivered, opened,
converted — within the part of the bank a viewer may see.

:func:`sop_effect` is the one entry point (the console page and ``scrm report effect`` call it).

**What is counted.** A step's *cohort* is its occurrences whose planned day (the day in the
occurrence key, the bank's local day) lies in ``[since, until]``. Every figure counts distinct
targets (customers, or group chats for posts in a chat); a monthly step that reached a customer
twice in the period counts them once, in each stage they got to:

* ``targeted``: every target the step was planned for (sent, skipped, or only tagged);
* ``sent``: a push queued or a task card issued (or carried over to a later workday);
* ``skipped``: by reason kind (:mod:`handlers.console.reasons`, as the cockpit groups them), and
  ``skipped_total``; a target is skipped only in an occurrence where nothing was sent;
* ``delivered``: pushes the manager confirmed in WeCom — the mass-send result
  (``get_groupmsg_task`` status 2, ``sop_mass_send.confirmed``) — and cards whose suggested
  message (the step's ``script:``) the manager sent into the chat from the sidebar
  (``sop_task.detail.script_sent_at``): a card is not a mass send, and that tap is the only
  sign that its words reached the customer;
* ``opened``: targets whose tracked link from this step was opened (``radar_click.occurrence``);
* ``converted`` (steps with a ``goal:`` only, else ``None``): customers sent the step for whom
  the CRM reported an event of the goal's kind (through ``binding``) after the send and at
  most ``within_days`` after it. Conversions keep arriving until the window closes.

An SOP's ``total`` counts the same over all its steps (a customer reached by two steps is one).

**Scope.** A target occurrence belongs to whoever sent it (``sop_send.sender``, the card's
manager); a skip names no sender, so, as the cockpit counts skips, a group's owner or the
customer's primary manager at that moment. The viewer sees what belongs to the managers of
their grant (narrowed by ``dept``/``manager`` as on the cockpit); what belongs to no manager
counts for the whole bank only.

**Why not the daily roll-up.** The roll-up stores facts on the day they happen and is final
once the day is over; an effect figure belongs to the day of the *send* but is settled days or
weeks later (confirmations within 3 days, opens any time, conversions within a goal's window of
up to a year). :func:`collect` computes it from the raw rows of one bounded period (at most
:data:`MAX_DAYS` days), each through an index: ``occurrence`` by ``at`` (``ix_occurrence_at``,
migration ``console_0003``), then by key, in chunks, only for those occurrences —
``sop_send.key``, ``sop_task.key``, ``outbox_action.idempotency_key`` → ``sop_mass_send.msgid``,
``radar_click.occurrence`` (``ix_radar_click_occurrence``), ``binding.external_userid``,
``crm_event.crm_id``, ``follow.external_userid``, ``group_chat.chat_id``: linear in the period's
occurrences, which on 1,000,000 customers is ~143,000 rows and ~1,700 statements for 30 days
(18 s). So the page reads what :mod:`handlers.console.effectstore` stored of the past days —
one row per target, step and day, built nightly by :func:`collect` itself — counts it in the
database, and adds what the raw rows say came since (today, late occurrences, opens,
confirmations, conversions): the same figures (``use_store=False`` computes them from the raw
rows alone, as the store's test does to compare).

The result is plain JSON data in a fixed order (SOPs by source, steps in file order, reasons in
the cockpit's order), so two runs over the same rows give byte-identical output.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import String, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.console.access import Grant
from handlers.console.reasons import LABELS, reason_kind
from handlers.console.rollup import day_window, primary_manager, target_of
from handlers.console.scope import Scope, resolve
from handlers.console.viewcache import ViewCache, view_key
from handlers.contacts.api import Follow
from handlers.crm.api import Binding, CrmEvent
from handlers.groups.api import GroupChat
from handlers.radar.api import RadarClick
from handlers.sop.api import SCRIPT_SENT_AT, SopMassSend, SopSend, SopTask
from scrm.adapters.db.engine import dialect_of, table_of
from scrm.kernel.models import Occurrence, OutboxAction
from scrm.playbook import Goal, Playbook

if TYPE_CHECKING:
    from handlers.console.effectstore import LiveParts

#: The longest period one call reads (a year: the longest goal window, and bounded work).
MAX_DAYS = 366
#: Occurrences are recorded when their slot runs: a late slot (misfire grace) or a card carried
#: over is recorded after its planned day; read this much past the period, keep the period's days.
LATE_MARGIN = timedelta(days=8)
STAGES = ("targeted", "sent", "skipped_total", "delivered", "opened", "converted")
_CHUNK = 2000  # keys per IN list: a view waits on each round trip when the event loop is busy
T = TypeVar("T")


@dataclass
class _Occ:
    """One target of one step on one planned day, as the occurrence rows tell it."""

    source: str
    step: str
    target: str
    day: date
    at: datetime | None = None  # when it was sent (the done or carried-over row), else recorded
    sent: bool = False
    skip: str | None = None  # the reason kind, when skipped
    manager: str = ""
    delivered: bool = False
    opened: bool = False
    converted: bool = False

    @property
    def send_key(self) -> str:
        """``handlers.sop.model.send_key``: the push's outbox key and ``sop_send.key``."""
        return f"sop:{self.source}:{self.step}:{self.target}:{self.day.isoformat()}"

    @property
    def radar_occurrence(self) -> str:
        """``handlers.sop.executor.occurrence_of``: what the step's tracked links carry."""
        return f"sop:{self.source}:{self.step}@{self.target}:{self.day.isoformat()}"


@dataclass
class _Sets:
    targeted: set[str] = field(default_factory=set)
    sent: set[str] = field(default_factory=set)
    skipped: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    delivered: set[str] = field(default_factory=set)
    opened: set[str] = field(default_factory=set)
    converted: set[str] = field(default_factory=set)

    def figures(self, has_goal: bool) -> dict[str, Any]:
        return {
            "targeted": len(self.targeted), "sent": len(self.sent),
            "skipped": {kind: len(self.skipped.get(kind, ())) for kind in LABELS},
            "skipped_total": len(set().union(*self.skipped.values())) if self.skipped else 0,
            "delivered": len(self.delivered), "opened": len(self.opened),
            "converted": len(self.converted) if has_goal else None,
        }


def among(db: AsyncSession, column: Any, values: Sequence[str]) -> Any:
    """SQL: ``column IN values``; on PostgreSQL as ``= ANY(one array parameter)``: SQLAlchemy's
    rendering of one bind parameter per value was half of a view's CPU (~12,000 a view)."""
    if dialect_of(db) == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(String)))
    return column.in_(values)


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i:i + _CHUNK]


def _parse(job_key: str, occurrence_key: str) -> tuple[str, str, str, date, str] | None:
    """``sop:{calendar|path}:{name}:{step}`` and ``{target}:{day}[:tag|:task]`` → (source, step,
    target, day, suffix); None for a row of another shape."""
    parts = job_key.split(":", 3)
    if len(parts) != 4 or parts[0] != "sop":
        return None
    suffix = next((s for s in ("tag", "task") if occurrence_key.endswith(":" + s)), "")
    try:
        day = date.fromisoformat(occurrence_key.removesuffix(":" + suffix if suffix else "").rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return None
    return f"{parts[1]}:{parts[2]}", parts[3], target_of(occurrence_key), day, suffix


# The period's occurrence rows, read as plain rows (the table's columns, not the mapped class: the
# ORM's row loading was half the page's CPU on 140,000 rows) and only those of a step's job key
# (``sop:KIND:NAME:STEP``, three colons at least: :func:`_parse` drops every other row anyway).
_OCC = table_of(Occurrence)
_PERIOD_ROWS = (select(_OCC.c.job_key, _OCC.c.occurrence_key, _OCC.c.outcome, _OCC.c.reason, _OCC.c.at)
                .where(_OCC.c.at >= bindparam("start"), _OCC.c.at < bindparam("end"),
                       _OCC.c.job_key.like("sop:%:%:%"))
                .order_by(_OCC.c.id))


async def _occurrences(db: AsyncSession, since: date, until: date, zone: str) -> list[_Occ]:
    start, end = day_window(since, zone)[0], day_window(until, zone)[1]
    rows = await db.execute(_PERIOD_ROWS, {"start": start - timedelta(days=1), "end": end + LATE_MARGIN})
    occs: dict[tuple[str, str, str, date], _Occ] = {}
    skips: dict[tuple[str, str, str, date], tuple[str, datetime]] = {}
    for job_key, occurrence_key, outcome, reason, at in rows.all():
        parsed = _parse(job_key, occurrence_key)
        if parsed is None:
            continue
        source, step, target, day, suffix = parsed
        if not since <= day <= until:
            continue
        key = (source, step, target, day)
        occ = occs.setdefault(key, _Occ(source, step, target, day, at))
        if outcome == "skipped":
            skips.setdefault(key, (reason_kind(reason), at))
        elif (outcome == "done" and suffix != "tag") or outcome == "deferred":
            if not occ.sent or occ.at is None or at < occ.at:
                occ.at = at
            occ.sent = True
    for key, (kind, at) in skips.items():
        occ = occs[key]
        if not occ.sent:  # a card not carried over beside a push that went: the target was sent
            occ.skip, occ.at = kind, at
    return list(occs.values())


async def _attribute(db: AsyncSession, occs: list[_Occ]) -> None:
    """Each occurrence's manager: the sender of its push or card, else (skips, tag-only steps)
    the group's owner or the customer's primary manager then, as the cockpit attributes them."""
    sent_keys = sorted({o.send_key for o in occs if o.sent})
    senders: dict[str, str] = {}
    for chunk in _chunks(sent_keys):
        senders.update((await db.execute(
            select(SopTask.key, SopTask.userid).where(among(db, SopTask.key, chunk)))).all())
        senders.update((await db.execute(
            select(SopSend.key, SopSend.sender).where(among(db, SopSend.key, chunk)))).all())
    rest = [o for o in occs if o.send_key not in senders]
    targets = sorted({o.target for o in rest})
    owners: dict[str, str] = {}
    follows: dict[str, list[tuple[datetime, str, str, datetime | None]]] = defaultdict(list)
    for chunk in _chunks(targets):
        owners.update({c: w or "" for c, w in (await db.execute(
            select(GroupChat.chat_id, GroupChat.owner).where(among(db, GroupChat.chat_id, chunk)))).all()})
        for ext, userid, created, status, status_at in (await db.execute(
                select(Follow.external_userid, Follow.userid, Follow.created_at, Follow.status, Follow.status_at)
                .where(among(db, Follow.external_userid, chunk)))).all():
            follows[ext].append((created, userid, status, status_at))
    for o in occs:
        if o.send_key in senders:
            o.manager = senders[o.send_key] or ""
        elif o.target in owners:
            o.manager = owners[o.target]
        elif o.at is not None:
            o.manager = primary_manager(follows.get(o.target, ()), o.at)


async def _delivered(db: AsyncSession, occs: list[_Occ]) -> set[str]:
    """Send keys of pushes whose mass send every sender confirmed in WeCom, and of cards whose
    script the manager sent from the sidebar."""
    out: set[str] = set()
    keys = sorted({o.send_key for o in occs if o.sent})
    for chunk in _chunks(keys):
        out.update((await db.scalars(
            select(OutboxAction.idempotency_key)
            .join(SopMassSend, SopMassSend.msgid == OutboxAction.wecom_msgid)
            .where(among(db, OutboxAction.idempotency_key, chunk), SopMassSend.confirmed.is_(True)))).all())
        out.update(key for key, detail in (await db.execute(
            select(SopTask.key, SopTask.detail).where(among(db, SopTask.key, chunk)))).all()
                   if (detail or {}).get(SCRIPT_SENT_AT))
    return out


async def _opened(db: AsyncSession, occs: list[_Occ]) -> set[str]:
    """Radar occurrences of sent steps whose link was opened at least once."""
    out: set[str] = set()
    wanted = sorted({o.radar_occurrence for o in occs if o.sent})
    for chunk in _chunks(wanted):
        out.update(x for x in (await db.scalars(
            select(RadarClick.occurrence).where(among(db, RadarClick.occurrence, chunk)).distinct())).all() if x)
    return out


async def _converted(db: AsyncSession, occs: list[_Occ],
                     goals: dict[tuple[str, str], Goal]) -> set[tuple[str, str, str, date]]:
    """(source, step, target, day) of sent occurrences whose customer met the step's goal in time."""
    mine = [o for o in occs if o.sent and o.at is not None and (o.source, o.step) in goals]
    if not mine:
        return set()
    customers = sorted({o.target for o in mine})
    crm_ids: dict[str, list[str]] = defaultdict(list)
    for chunk in _chunks(customers):
        for crm_id, ext in (await db.execute(select(Binding.crm_id, Binding.external_userid)
                                             .where(among(db, Binding.external_userid, chunk)))).all():
            crm_ids[ext].append(crm_id)
    kinds = sorted({g.event for g in goals.values()})
    first = min(o.at for o in mine if o.at is not None)
    events: dict[tuple[str, str], list[datetime]] = defaultdict(list)  # (crm_id, kind) → times
    all_ids = sorted({c for ids in crm_ids.values() for c in ids})
    for chunk in _chunks(all_ids):
        for crm_id, kind, at in (await db.execute(
                select(CrmEvent.crm_id, CrmEvent.kind, CrmEvent.at)
                .where(among(db, CrmEvent.crm_id, chunk), CrmEvent.kind.in_(kinds), CrmEvent.at > first))).all():
            events[(crm_id, kind)].append(at)
    out = set()
    for o in mine:
        assert o.at is not None
        goal = goals[(o.source, o.step)]
        until = o.at + timedelta(days=goal.within_days)
        if any(o.at < at <= until for c in crm_ids.get(o.target, ()) for at in events.get((c, goal.event), ())):
            out.add((o.source, o.step, o.target, o.day))
    return out


@dataclass(frozen=True)
class _StepInfo:
    step: str
    material: str
    active: bool
    goal: Goal | None


def playbook_sops(pb: Playbook | None) -> dict[str, tuple[str, bool, list[_StepInfo]]]:
    """source → (name, active, steps in file order) of every calendar and path of the playbook."""
    out: dict[str, tuple[str, bool, list[_StepInfo]]] = {}
    if pb is None:
        return out
    for cal in pb.calendars.values():
        steps = [_StepInfo(e.key, e.send or e.task or "", e.active, e.goal) for e in cal.steps]
        steps += [_StepInfo(r.key, r.send or r.task or "", r.active, r.goal) for r in cal.recurring]
        out[f"calendar:{cal.calendar}"] = (cal.name or cal.calendar, cal.active, steps)
    for path in pb.paths.values():
        steps = [_StepInfo(s.key, s.send or s.task or "", s.active, s.goal) for s in path.steps]
        out[f"path:{path.path}"] = (path.name, path.active, steps)
    return out


def _goal_json(goal: Goal | None) -> dict[str, Any] | None:
    return None if goal is None else {"event": goal.event, "within_days": goal.within_days}


def _in_scope(scope: Scope) -> Callable[[str], bool]:
    if scope.whole_bank:
        return lambda _manager: True
    return lambda manager: manager in scope.members


async def sop_effect(db: AsyncSession, grant: Grant, *, playbook: Playbook | None, since: date, until: date,
                     zone: str, dept: str = "", manager: str = "", use_store: bool = True,
                     kept: LiveParts | None = None, now: datetime | None = None, version: str = "",
                     views: ViewCache | None = None) -> dict[str, Any]:
    """The effect of every SOP step planned on the local days ``since``..``until`` (inclusive,
    at most :data:`MAX_DAYS`), as seen by ``grant`` (narrowed to ``dept`` or ``manager``).

    ``playbook`` gives SOP names, the steps' order and their goals (``None``: only what the rows
    say, no conversions). ``use_store``: the stored days of :mod:`handlers.console.effectstore`
    with what came since on top (the page); False: the raw rows alone (the same figures, slower).
    ``kept`` (the page's, with ``now`` and the playbook's ``version``): the live part as computed
    at most ``live_cache_s`` ago, whose moment the result gives as ``as_of``; ``views`` (the
    page's, with ``kept``): the whole result kept for the next view of the same scope and period
    while that live part, the stored days' builds and the directory stay the same
    (:mod:`handlers.console.viewcache`) — the kept object itself is returned, never to be changed.
    Raises ``ValueError`` for a bad period,
    :class:`~handlers.console.scope.ScopeRefused` outside the grant and
    :class:`~handlers.console.scope.BadScope` for a department or manager nobody has.

    Returns ``{"period", "scope", "reasons", "sops": [{"source", "kind", "name", "total",
    "steps": [{"step", "material", "goal", <figures>}]}]}`` where figures are ``targeted``,
    ``sent``, ``skipped`` (reason kind → targets), ``skipped_total``, ``delivered``, ``opened``
    and ``converted`` (``None`` without a goal); see the module's docstring for each.
    """
    if since > until:
        raise ValueError(f"since {since} is after until {until}")
    if (until - since).days + 1 > MAX_DAYS:
        raise ValueError(f"a period of at most {MAX_DAYS} days")
    scope = await resolve(db, grant, dept=dept, manager=manager)
    known = playbook_sops(playbook)
    goals = goals_of(known)
    if not use_store:
        occs = await collect(db, since, until, zone, goals, _in_scope(scope))
        return _assemble(since, until, scope, known, *figures_of(occs))
    from handlers.console import effectstore  # it builds on this module: import late

    part = await effectstore.live_part(db, since=since, until=until, zone=zone, goals=goals, now=now, kept=kept,
                                       version=version)

    async def compute() -> dict[str, Any]:
        out = _assemble(since, until, scope, known, *await effectstore.figures_in(db, scope, part, goals))
        if kept is not None and now is not None:
            out["as_of"] = part.at.isoformat()
        return out

    if views is None or kept is None or now is None or not kept.ttl:  # no kept live part to key a kept view on
        return await compute()
    # The cockpit's view key with the page, the playbook version and the goals in its playbook slot.
    key = view_key(since=since, until=until, today=until, playbook=f"effect:{version}:{effectstore.goals_key(goals)}",
                   zone=zone, dept=scope.dept, manager=scope.manager, members=scope.members)
    return await views.view(db, key, part.used, {until: part.serial}, compute, fingerprint=part.built)


def goals_of(known: dict[str, tuple[str, bool, list[_StepInfo]]]) -> dict[tuple[str, str], Goal]:
    return {(source, s.step): s.goal for source, (_n, _a, steps) in known.items() for s in steps if s.goal}


async def collect(db: AsyncSession, since: date, until: date, zone: str, goals: dict[tuple[str, str], Goal],
                  visible: Callable[[str], bool] = lambda _manager: True) -> list[_Occ]:
    """Every occurrence planned on ``since``..``until`` whose manager is ``visible``, with how far
    it got (sent, skipped, delivered, opened, converted), from the raw rows."""
    occs = await _occurrences(db, since, until, zone)
    await _attribute(db, occs)
    occs = [o for o in occs if visible(o.manager)]
    delivered, opened = await _delivered(db, occs), await _opened(db, occs)
    converted = await _converted(db, occs, goals)
    for o in occs:
        if o.sent:
            o.delivered = o.send_key in delivered
            o.opened = o.radar_occurrence in opened
            o.converted = (o.source, o.step, o.target, o.day) in converted
    return occs


StepFigures = dict[tuple[str, str], dict[str, Any]]  # (source, step) → figures
SopFigures = dict[str, dict[str, Any]]  # source → figures


def figures_of(occs: Sequence[_Occ]) -> tuple[StepFigures, SopFigures]:
    """Each step's and each SOP's figures (distinct targets per stage) over ``occs``; converted
    is counted for every step here (``None`` where no goal is set is decided on output)."""
    steps: dict[tuple[str, str], _Sets] = defaultdict(_Sets)
    totals: dict[str, _Sets] = defaultdict(_Sets)
    for o in occs:
        for sets in (steps[(o.source, o.step)], totals[o.source]):
            sets.targeted.add(o.target)
            if o.skip is not None:
                sets.skipped[o.skip].add(o.target)
            if not o.sent:
                continue
            sets.sent.add(o.target)
            if o.delivered:
                sets.delivered.add(o.target)
            if o.opened:
                sets.opened.add(o.target)
            if o.converted:
                sets.converted.add(o.target)
    return ({k: v.figures(True) for k, v in steps.items()}, {k: v.figures(True) for k, v in totals.items()})


def _with_goal(figures: dict[str, Any] | None, has_goal: bool) -> dict[str, Any]:
    out = dict(figures) if figures is not None else _Sets().figures(True)
    if not has_goal:
        out["converted"] = None
    return out


def _assemble(since: date, until: date, scope: Scope, known: dict[str, tuple[str, bool, list[_StepInfo]]],
              steps: StepFigures, totals: SopFigures) -> dict[str, Any]:
    sops = []
    for source in sorted(set(totals) | {s for s, (_n, active, _st) in known.items() if active}):
        name, _active, infos = known.get(source, (source.split(":", 1)[1], False, []))
        listed = [i for i in infos if i.active or (source, i.step) in steps]
        seen = {i.step for i in listed}
        listed += [_StepInfo(step, "", False, None) for (src, step) in sorted(steps)
                   if src == source and step not in seen]
        has_goal = any(i.goal is not None for i in listed)
        sops.append({
            "source": source, "kind": source.split(":", 1)[0], "name": name,
            "total": _with_goal(totals.get(source), has_goal),
            "steps": [{"step": i.step, "material": i.material, "goal": _goal_json(i.goal),
                       **_with_goal(steps.get((source, i.step)), i.goal is not None)} for i in listed],
        })
    return {
        "period": {"since": since.isoformat(), "until": until.isoformat(), "days": (until - since).days + 1},
        "scope": {"dept": scope.dept, "manager": scope.manager, "label": scope.label},
        "reasons": [{"kind": k, "label": label} for k, label in LABELS.items()],
        "sops": sops,
    }


def funnel(figures: dict[str, Any]) -> list[tuple[str, int]]:
    """The stages of a funnel chart, from the figures of a step or an SOP's total (converted only
    where a goal is set)."""
    out = [("targeted", figures["targeted"]), ("sent", figures["sent"]), ("delivered", figures["delivered"]),
           ("opened", figures["opened"])]
    if figures["converted"] is not None:
        out.append(("converted", figures["converted"]))
    return out
