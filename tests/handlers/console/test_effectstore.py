"""The effect page's stored rows give the figures of the raw rows: on the scripted fixture of
``test_effect`` (whose figures are checked against the script there), every viewer's 7, 30 and
90 days from the stored days equal the raw-row computation and the script; facts recorded after
the build (an open, a mass-send confirmation, a script sent from the sidebar, a goal event, a
binding made later, a late occurrence) change the figures at once, as on the raw rows; the
nightly build rebuilds the days they touched and only those; a change of goals is not read from
rows stored for other goals. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.console import effectstore, jobs
from handlers.console.access import Grant, Role
from handlers.console.effect import collect, goals_of, playbook_sops, sop_effect
from handlers.console.effect import figures_of as figures_of_occs
from handlers.console.models import ConsoleEffectDay, ConsoleEffectRow, ConsolePeriodCache
from handlers.console.scope import Scope
from handlers.console.viewcache import ViewCache
from handlers.contacts.api import Customer, Follow
from handlers.crm.api import Binding, CrmEvent
from handlers.radar.api import RadarClick
from handlers.sop.api import SopMassSend, SopSend, SopTask
from scrm.kernel.models import Occurrence, OutboxAction
from scrm.playbook import Goal, Playbook
from tests.handlers.console.support import console_stack
from tests.handlers.console.test_effect import (
    PTH,
    TZ,
    VIEWERS,
    WEST_PAYROLL,
    ZONE,
    expect_effect,
    figures_of,
    seed,
    today_of,
    use_playbook,
)
from tests.support.stack import Stack

PERIODS = (7, 30, 90)


async def both(db: AsyncSession, pb: Playbook, today: date) -> list[tuple[Any, Any]]:
    """(stored, raw) figures of every viewer and period."""
    out = []
    for days in PERIODS:
        for grant, dept, manager, _who in VIEWERS:
            kw: dict[str, Any] = {"playbook": pb, "since": today - timedelta(days=days - 1), "until": today,
                                  "zone": ZONE, "dept": dept, "manager": manager}
            out.append((await sop_effect(db, grant, use_store=True, **kw),
                        await sop_effect(db, grant, use_store=False, **kw)))
    return out


async def stored_days(db: AsyncSession) -> int:
    return int(await db.scalar(select(func.count()).select_from(ConsoleEffectDay)) or 0)


def at_(today: date, ago: int, hour: int = 10) -> datetime:
    return datetime.combine(today - timedelta(days=ago), time(hour, 0), TZ).astimezone(UTC)


async def late_facts(db: AsyncSession, today: date, now: datetime) -> None:
    """What arrives after the nightly build, each about a stored day."""
    plan20 = (today - timedelta(days=20)).isoformat()
    # wmE02's push of 20 days ago is opened now.
    db.add(RadarClick(token_id="tokL1", material_id="t-welcome-default", sender="zhangwei",
                      external_userid="wmE02", occurrence=f"sop:{PTH}:plan@wmE02:{plan20}", at=now))
    # wmE01's second-month push (5 days ago) is confirmed in WeCom now.
    key5 = f"sop:{PTH}:plan:wmE01:{(today - timedelta(days=5)).isoformat()}"
    msgid = await db.scalar(select(OutboxAction.wecom_msgid).where(OutboxAction.idempotency_key == key5))
    await db.execute(update(SopMassSend).where(SopMassSend.msgid == msgid).values(confirmed=True, checked_at=now))
    # wmE01's card of 18 days ago: its script is sent from the sidebar now.
    key18 = f"sop:{PTH}:call:wmE01:{(today - timedelta(days=18)).isoformat()}"
    await db.execute(update(SopTask).where(SopTask.key == key18).values(
        detail={"script": "t-welcome-default", "script_sent_at": now.isoformat()}))
    # wmE02 (pushed 20 days ago, visited the day before) visits 2 days after the push: reported now.
    db.add(CrmEvent(event_id="evL1", crm_id="crm-wmE02", kind="interaction.visit",
                    at=at_(today, 20) + timedelta(days=2), payload={}))
    # wmE11, pushed 6 days ago and visiting a day later, is bound to their CRM customer only now.
    db.add(Binding(crm_id="crm-wmE11", external_userid="wmE11", source="direct", bound_at=now))
    # A slot of 4 days ago that ran late: recorded after that day was built.
    day4 = (today - timedelta(days=4)).isoformat()
    db.add(Occurrence(job_key=f"sop:{PTH}:plan", occurrence_key=f"wmE03:{day4}", outcome="done", at=now))
    db.add(SopSend(key=f"sop:{PTH}:plan:wmE03:{day4}", target="wmE03", target_type="customer", source=PTH,
                   step="plan", sender="lina", material="t-welcome-default", day=today - timedelta(days=4),
                   created_at=now))


async def unbound_customer(db: AsyncSession, today: date, now: datetime) -> None:
    """wmE11: lina's customer, pushed 6 days ago, a visit a day later, no binding yet."""
    day6 = (today - timedelta(days=6)).isoformat()
    db.add(Customer(external_userid="wmE11", name="wmE11", updated_at=now))
    db.add(Follow(userid="lina", external_userid="wmE11", created_at=now - timedelta(days=400)))
    db.add(Occurrence(job_key=f"sop:{PTH}:plan", occurrence_key=f"wmE11:{day6}", outcome="done", at=at_(today, 6)))
    db.add(SopSend(key=f"sop:{PTH}:plan:wmE11:{day6}", target="wmE11", target_type="customer", source=PTH,
                   step="plan", sender="lina", material="t-welcome-default", day=today - timedelta(days=6),
                   created_at=at_(today, 6)))
    db.add(CrmEvent(event_id="evL2", crm_id="crm-wmE11", kind="interaction.visit",
                    at=at_(today, 6) + timedelta(days=1), payload={}))


async def seeded_and_built(s: Stack) -> tuple[Playbook, date, datetime, effectstore.Goals]:
    """The scripted fixture written and its past days stored, as the nightly job leaves them:
    the playbook, today, now and the goals."""
    pb = await use_playbook(s)
    today, now = today_of(s), s.clock.now()
    goals = goals_of(playbook_sops(pb))
    async with s.runtime.sessions() as db, db.begin():
        await seed(db, today, now)
        await effectstore.build_due(db, today, ZONE, goals, now)
    return pb, today, now, goals


async def test_the_stored_days_give_the_raw_rows_figures_and_what_came_since(db_url: str, tmp_path: Path) -> None:
    async with console_stack(db_url, tmp_path) as s:
        pb = await use_playbook(s)
        today, now = today_of(s), s.clock.now()
        goals = goals_of(playbook_sops(pb))
        async with s.runtime.sessions() as db, db.begin():
            await seed(db, today, now)
            await unbound_customer(db, today, now)
        async with s.runtime.sessions() as db, db.begin():
            built = await effectstore.build_due(db, today, ZONE, goals, now)
        assert built == [today - timedelta(days=effectstore.KEEP_DAYS - i) for i in range(effectstore.KEEP_DAYS)]
        async with s.runtime.sessions() as db:
            assert await stored_days(db) == effectstore.KEEP_DAYS
            rows = int(await db.scalar(select(func.count()).select_from(ConsoleEffectRow)) or 0)
            assert rows >= 20  # the script's occurrences before today are stored, not read live
            pairs = await both(db, pb, today)
            for stored, raw in pairs:
                assert stored == raw
            # and they are the script's (wmE11 is nobody's conversion yet: unbound; lina's push).
            whole_30 = figures_of(pairs[len(VIEWERS)][0])
            script_30 = expect_effect(today, 30, None)
            assert whole_30[(PTH, "plan")]["sent"] == script_30[(PTH, "plan")]["sent"] + 1  # wmE11
            assert whole_30[(PTH, "plan")]["converted"] == script_30[(PTH, "plan")]["converted"]
            await db.commit()  # the stored days' counts are kept (as the page's audit row commits them)
            kept = int(await db.scalar(select(func.count()).select_from(ConsolePeriodCache)) or 0)
            # a row per scope and period: the team lead and the branch head narrowed to that team share one
            assert kept == len(PERIODS) * (len(VIEWERS) - 1)

        async with s.runtime.sessions() as db, db.begin():
            await late_facts(db, today, now)
        async with s.runtime.sessions() as db:
            after = await both(db, pb, today)  # the kept counts, and what came since on top
            for stored, raw in after:
                assert stored == raw
            plan_before = figures_of(pairs[len(VIEWERS)][1])[(PTH, "plan")]
            plan_after = figures_of(after[len(VIEWERS)][1])[(PTH, "plan")]
            # each late fact moved a figure (so the equality above is not of unchanged rows):
            # wmE02 opened and converted, wmE11 converted; wmE01 delivered (it was already, 20 days
            # ago, in the period: one target); the card's script: the call step's delivered.
            assert plan_after["opened"] == plan_before["opened"] + 1
            assert plan_after["converted"] == plan_before["converted"] + 2
            call_before = figures_of(pairs[len(VIEWERS)][1])[(PTH, "call")]
            call_after = figures_of(after[len(VIEWERS)][1])[(PTH, "call")]
            assert call_after["delivered"] == call_before["delivered"] + 1
            week_before = figures_of(pairs[0][1])[(PTH, "plan")]
            week_after = figures_of(after[0][1])[(PTH, "plan")]
            assert week_after["delivered"] == week_before["delivered"] + 1  # wmE01's second month
            assert week_after["sent"] == week_before["sent"] + 1  # wmE03's late slot

        # The next night rebuilds the days those facts touched, and only them; still equal.
        s.clock.advance(days=1)
        tomorrow, later = today + timedelta(days=1), s.clock.now()
        touched = {today - timedelta(days=d) for d in (20, 18, 6, 5, 4)}
        async with s.runtime.sessions() as db, db.begin():
            rebuilt = await effectstore.build_due(db, tomorrow, ZONE, goals, later)
        assert set(rebuilt) == touched | {today}
        async with s.runtime.sessions() as db:
            assert await stored_days(db) == effectstore.KEEP_DAYS
            for stored, raw in await both(db, pb, tomorrow):
                assert stored == raw

        # Other goals: the stored conversions are not theirs; the days are read live, as raw.
        other = {k: Goal(event=g.event, within_days=1) for k, g in goals.items()}
        since = tomorrow - timedelta(days=29)
        async with s.runtime.sessions() as db:
            async def bank_figures(goals: effectstore.Goals) -> tuple[Any, Any]:
                part = await effectstore.live_part(db, since=since, until=tomorrow, zone=ZONE, goals=goals)
                return await effectstore.figures_in(db, Scope("", "", {}), part, goals)
            with_other = await bank_figures(other)
            assert with_other == figures_of_occs(await collect(db, since, tomorrow, ZONE, other))
            assert with_other != await bank_figures(goals)


async def test_the_nightly_job_keeps_the_counts_the_first_views_read(db_url: str, tmp_path: Path) -> None:
    """``jobs.warm_effect`` keeps the stored days' counts of the whole bank and each access-file
    scope for 7, 30 and 90 days; a view of one of them reads them (and still gives the raw
    figures), a scope nobody is in is passed over."""
    async with console_stack(db_url, tmp_path) as s:
        pb, today, _now, goals = await seeded_and_built(s)
        async with s.runtime.sessions() as db, db.begin():
            await jobs.warm_effect(db, today, goals, [WEST_PAYROLL, "没有/这个/部门"])
        async with s.runtime.sessions() as db:
            keys = set((await db.scalars(select(ConsolePeriodCache.key))).all())
            assert len(keys) == 2 * len(PERIODS)
            lead = Grant("wangqiang", Role.TEAM_LEAD, WEST_PAYROLL)
            kw: dict[str, Any] = {"playbook": pb, "since": today - timedelta(days=29), "until": today, "zone": ZONE}
            assert await sop_effect(db, lead, **kw) == await sop_effect(db, lead, use_store=False, **kw)
            await db.commit()
            assert set((await db.scalars(select(ConsolePeriodCache.key))).all()) == keys  # read, none added


async def test_the_page_keeps_its_live_part_for_live_cache_s(db_url: str, tmp_path: Path) -> None:
    """The page's live part (``LiveParts``, the cockpit's ``live_cache_s``) serves every scope
    for its window and says when it was computed; an open after it shows once the window is over,
    and then the figures are the raw rows' again."""
    async with console_stack(db_url, tmp_path) as s:
        pb, today, now, _goals = await seeded_and_built(s)
        parts = effectstore.LiveParts(60)
        admin = Grant("zhouhai", Role.OPS_ADMIN)
        kw: dict[str, Any] = {"playbook": pb, "since": today - timedelta(days=29), "until": today, "zone": ZONE}
        async with s.runtime.sessions() as db, db.begin():  # as the page: its session commits (the part's marker)
            first = await sop_effect(db, admin, kept=parts, now=now, version="v1", **kw)
            assert first.pop("as_of") == now.isoformat()
            assert first == await sop_effect(db, admin, use_store=False, **kw)
        async with s.runtime.sessions() as db, db.begin():
            db.add(RadarClick(token_id="tokL9", material_id="t-welcome-default", sender="zhangwei",
                              external_userid="wmE02", occurrence=f"sop:{PTH}:plan@wmE02:{today - timedelta(days=20)}",
                              at=now))
        async with s.runtime.sessions() as db:
            kept = await sop_effect(db, admin, kept=parts, now=now + timedelta(seconds=59), version="v1", **kw)
            assert kept.pop("as_of") == now.isoformat() and kept == first  # the open is not read yet
            later = now + timedelta(seconds=60)
            fresh = await sop_effect(db, admin, kept=parts, now=later, version="v1", **kw)
            assert fresh.pop("as_of") == later.isoformat()
            assert fresh == await sop_effect(db, admin, use_store=False, **kw) != first


async def test_the_page_keeps_whole_results_while_their_stored_days_and_live_part_hold(db_url: str,
                                                                                         tmp_path: Path) -> None:
    """With the page's caches (the live part and whole results): a repeated view of a scope in
    one live window is the kept result itself, each scope kept apart; facts recorded since show
    with the next live window; stored days built again with those facts — at the very instant of
    their first build, so their build times do not change — give a result computed again that
    equals the raw rows' (the kept part's stored rows are not used with the new counts: nothing
    is counted twice)."""
    async with console_stack(db_url, tmp_path) as s:
        pb, today, now, goals = await seeded_and_built(s)
        parts, views = effectstore.LiveParts(60), ViewCache()
        admin, lead = Grant("zhouhai", Role.OPS_ADMIN), Grant("wangqiang", Role.TEAM_LEAD, WEST_PAYROLL)
        kw: dict[str, Any] = {"playbook": pb, "since": today - timedelta(days=29), "until": today, "zone": ZONE}

        async def page(grant: Grant, after_s: int) -> dict[str, Any]:
            async with s.runtime.sessions() as db, db.begin():  # as the page: its session commits
                return await sop_effect(db, grant, kept=parts, now=now + timedelta(seconds=after_s), version="v1",
                                        views=views, **kw)

        async def raw(grant: Grant) -> dict[str, Any]:
            async with s.runtime.sessions() as db:
                return await sop_effect(db, grant, use_store=False, **kw)

        def figures(data: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in data.items() if k != "as_of"}

        first = await page(admin, 0)
        assert figures(first) == await raw(admin)
        assert await page(admin, 30) is first
        mine = await page(lead, 30)
        assert figures(mine) == await raw(lead) != figures(first)
        assert await page(lead, 40) is mine

        async with s.runtime.sessions() as db, db.begin():
            await late_facts(db, today, now)
        assert await page(admin, 50) is first  # the facts are read with the next live window
        fresh = await page(admin, 61)
        assert fresh["as_of"] == (now + timedelta(seconds=61)).isoformat()
        assert figures(fresh) == await raw(admin) != figures(first)

        async with s.runtime.sessions() as db, db.begin():
            built = await effectstore.build_due(db, today, ZONE, goals, now)  # the first build's instant
        assert built  # the days the facts touched
        again = await page(admin, 70)
        assert again is not fresh and figures(again) == await raw(admin)
        assert figures(await page(lead, 70)) == await raw(lead)
