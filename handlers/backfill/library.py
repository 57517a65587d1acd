"""The two one-call stages: the staff directory (the staff feature's own sync, so names, teams
and leads are right before any customer is read) and the corp tag library."""

from __future__ import annotations

from handlers.backfill import progress
from handlers.backfill.context import Context
from handlers.crm.api import crm_owned_tag_ids
from handlers.staff.api import NOT_READABLE, apply_snapshot, read_directory
from handlers.tags.api import write_groups
from scrm.adapters.wecom.errors import WeComError


async def members(ctx: Context) -> None:
    """Sync the directory. Without address-book rights the members already known (an HR import)
    are used as they are, and the stage says so."""
    async with ctx.sessions() as session:
        if (await progress.stage_of(session, ctx.corp_id, "members")).status == progress.DONE:
            return
    try:
        snapshot = await read_directory(ctx.wecom)
    except WeComError as exc:
        if exc.errcode not in NOT_READABLE:
            raise
        async with ctx.sessions() as session, session.begin():
            await progress.renew(session, ctx.corp_id, ctx.owner, ctx.clock.now(), ctx.lease_s)
            await progress.finish_stage(session, ctx.corp_id, "members", ctx.clock.now(),
                                        f"address book not readable ({exc.errcode}): the members already known "
                                        "are used (scrm staff import FILE.csv)")
        return
    async with ctx.sessions() as session, session.begin():
        await progress.renew(session, ctx.corp_id, ctx.owner, ctx.clock.now(), ctx.lease_s)
        report = await apply_snapshot(session, snapshot, ctx.clock.now())
        await progress.save_page(session, ctx.corp_id, "members", {}, items=len(snapshot.people), skipped=0,
                                 now=ctx.clock.now())
        await progress.finish_stage(session, ctx.corp_id, "members", ctx.clock.now(), report.summary("synced"))


async def tags(ctx: Context) -> None:
    """Mirror the whole corp tag library (one ``get_corp_tag_list``), then note which tags the CRM owns."""
    async with ctx.sessions() as session:
        done = (await progress.stage_of(session, ctx.corp_id, "tags")).status == progress.DONE
    if not done:
        groups = (await ctx.wecom.get_corp_tag_list()).tag_group
        async with ctx.sessions() as session, session.begin():
            await progress.renew(session, ctx.corp_id, ctx.owner, ctx.clock.now(), ctx.lease_s)
            await write_groups(session, groups, full=True)
            count = sum(len(g.tag) for g in groups)
            await progress.save_page(session, ctx.corp_id, "tags", {}, items=count, skipped=0, now=ctx.clock.now())
            await progress.finish_stage(session, ctx.corp_id, "tags", ctx.clock.now(),
                                        f"{len(groups)} group(s), {count} tag(s)")
    if ctx.playbook is not None:
        async with ctx.sessions() as session:
            ctx.crm_tag_ids = await crm_owned_tag_ids(session, ctx.playbook.tag_groups)
