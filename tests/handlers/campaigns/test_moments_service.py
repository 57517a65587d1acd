"""A campaign's Moments channel through the whole service on the fake clock, against the WeCom
sandbox: one add_moment_task for the audience's managers (once, across a replay of the slot and
across a lost reply), its job polled until done, then who published it, and the funnel counting
the post as visible to the customers of the managers who published — never to the others.

Expected figures come from the scripted input (which customers each manager follows, who
publishes), not from the code under test."""

from __future__ import annotations

from datetime import date, time, timedelta
from pathlib import Path

from sqlalchemy import select

from handlers.campaigns.api import campaign_report, render
from handlers.campaigns.models import CampaignTouch
from handlers.compliance.models import TrailRecord
from handlers.sop.engine import run_slot
from scrm.sandbox.records import Limits
from tests.handlers.sop.seeding import ROUTERS, local, seed
from tests.support.playbooks import APPROVED, SOP_MATERIALS, write_shipped_playbook
from tests.support.stack import Stack, stack

MATERIALS = SOP_MATERIALS + f"""\
- id: m-poster
  type: image
  channels: [moments]
  text: 年末刷卡季，{{date.month}}消费满额有礼。
  image: {{path: covers/card-q4.png}}
  {APPROVED}
"""
CAMPAIGN = """\
campaign: card-post
name: 朋友圈海报
window: {start: 2026-11-02, end: 2026-11-30}
channels:
  - {id: post, kind: moments, on: 2026-11-03, at: "10:40", material: m-poster}
goal: {event: card.activated, within_days: 14}
cost: {per_send: 0.1}
"""
#: Each manager's customers; m3 will never publish the post.
BOOK = {"m1": ["wmA1", "wmA2", "wmA3"], "m2": ["wmB1", "wmB2"], "m3": ["wmC1", "wmC2"]}
MANAGERS = (("m1", "王一", None), ("m2", "王二", None), ("m3", "王三", None))
JOB_DELAY_S = 12 * 60  # the sandbox's job answers "running" this long


async def seeded(b: Stack) -> None:
    for i, (manager, customers) in enumerate(BOOK.items()):
        await seed(b, managers=MANAGERS if i == 0 else (), customers=customers, manager=manager)


def playbook(tmp_path: Path) -> tuple[Path, Path]:
    sop, mat = write_shipped_playbook(tmp_path, materials=MATERIALS)
    (sop / "campaigns" / "card-post.yaml").write_text(CAMPAIGN, encoding="utf-8")
    return sop, mat


async def touches(b: Stack) -> dict[str, str]:
    async with b.runtime.sessions() as s:
        return {t.customer: t.outcome for t in (await s.scalars(select(CampaignTouch))).all()}


async def moment_trail(b: Stack) -> list[tuple[str, list[str], str]]:
    async with b.runtime.sessions() as s:
        rows = (await s.execute(select(TrailRecord.kind, TrailRecord.audience, TrailRecord.audience_type)
                                .where(TrailRecord.api == "externalcontact/add_moment_task"))).all()
    return [(kind, sorted(audience), audience_type) for kind, audience, audience_type in rows]


async def test_the_post_is_asked_once_polled_until_done_and_reaches_only_publishers_customers(
        db_url: str, tmp_path: Path) -> None:
    customers = [c for cs in BOOK.values() for c in cs]
    async with stack(db_url, tmp_path, start=local("2026-11-02", "09:00"), demo=False, routers=ROUTERS,
                     playbook=playbook(tmp_path), limits=Limits(follow_user_page=2,
                                                                moment_job_delay_s=JOB_DELAY_S)) as b:
        await seeded(b)
        await b.run_until(local("2026-11-03", "10:50"))
        (call,) = b.calls("externalcontact/add_moment_task")
        body = call.body
        assert body["text"] == {"content": "年末刷卡季，11月消费满额有礼。"}
        assert body["visible_range"] == {"sender_list": {"user_list": ["m1", "m2", "m3"]}}
        (attachment,) = body["attachments"]
        assert attachment["msgtype"] == "image" and attachment["image"]["media_id"] in b.state.media
        # Moments take only ids of 朋友圈 attachments (media/upload_attachment, attachment_type 1).
        (upload,) = b.calls("media/upload_attachment")
        assert upload.query == {"media_type": "image", "attachment_type": "1"}
        assert b.calls("media/upload") == []
        (jobid,) = b.state.moment_tasks
        assert await touches(b) == dict.fromkeys(customers, "asked")  # targeted, not reached yet

        # The job answers "running" for 12 minutes: polled every 5 until done, then the senders.
        await b.run_until(local("2026-11-03", "11:10"))
        polls = b.calls("externalcontact/get_moment_task_result")
        created = b.state.moment_tasks[jobid].created_at
        assert len(polls) >= 2 and any(p.at < created + JOB_DELAY_S for p in polls)
        assert polls[-1].at >= created + JOB_DELAY_S
        assert len(b.calls("externalcontact/get_moment_task")) == 1

        # m1 and m2 publish from their WeCom client; m3 never does.
        assert b.driver.publish_moment(jobid, "m1") and b.driver.publish_moment(jobid, "m2")
        assert not b.driver.publish_moment(jobid, "nobody")
        await b.run_until(local("2026-11-03", "13:30"))
        published = {c for m in ("m1", "m2") for c in BOOK[m]}
        assert await touches(b) == {c: "visible" if c in published else "asked" for c in customers}

        # A replay of the slot (restart, second instance) asks nobody a second time.
        async with b.runtime.sessions() as s, s.begin():
            pb = b.runtime.playbook.current
            assert pb is not None
            await run_slot(s, pb, b.runtime.outbox, date(2026, 11, 3), time(10, 40), now=b.clock.now(),
                           agent_id=1000002, scheduler=b.runtime.scheduler)
        await b.run_until(local("2026-11-04", "09:00"))
        assert len(b.calls("externalcontact/add_moment_task")) == 1 and len(b.state.moment_tasks) == 1
        assert len(await b.outbox_rows("externalcontact/add_moment_task")) == 1
        # The message trail holds the post once: who was asked to publish it, its material.
        assert await moment_trail(b) == [("sop", sorted(BOOK), "moments")]
        async with b.runtime.sessions() as s:
            report = await campaign_report(s, "card-post", b.clock.now())
        # A Moments post is no send: reached customers cost nothing per send.
        assert report["funnel"] == {"targeted": len(customers), "reached": len(published), "opened": 0,
                                    "converted": 0, "referred": 0, "sends": 0, "cost": "0.00",
                                    "cost_per_conversion": None}
        assert report["moments"] == [{"channel": "post", "state": "running", "asked": len(BOOK), "refused": 0,
                                      "published": 2, "visible_to": len(published), "error": None}]
        assert (f"moments post: published by 2 of {len(BOOK)} managers asked; visible to {len(published)} "
                "customers of the audience (running)") in render(report)

        # The follow-up ends three days after the post was queued; the reach stays as it was.
        await b.run_until(local("2026-11-06", "12:00"))
        gets = b.calls("externalcontact/get_moment_task")
        assert gets[-1].at <= created + timedelta(days=3).total_seconds() + 3600
        async with b.runtime.sessions() as s:
            report = await campaign_report(s, "card-post", b.clock.now())
        assert report["moments"][0]["state"] == "done" and report["funnel"]["reached"] == len(published)
        n = len(gets)
        await b.run_until(local("2026-11-08", "12:00"))
        assert len(b.calls("externalcontact/get_moment_task")) == n  # no more polling


async def test_a_lost_reply_leaves_one_moment_and_the_action_for_an_operator(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, start=local("2026-11-02", "09:00"), demo=False, routers=ROUTERS,
                     playbook=playbook(tmp_path)) as b:
        await seeded(b)
        b.server.faults.drop_reply("externalcontact/add_moment_task", count=1)
        await b.run_until(local("2026-11-03", "10:50"))
        assert len(b.state.moment_tasks) == 1  # WeCom made the job; the reply never came back
        (row,) = await b.outbox_rows("externalcontact/add_moment_task")
        assert row.status == "unknown" and "check in WeCom" in (row.last_error or "")
        await b.run_until(local("2026-11-07", "12:00"))
        # Never called again: the one call WeCom received is the one whose reply was lost.
        assert len(b.state.moment_tasks) == 1 and len(b.calls("externalcontact/add_moment_task")) == 1
        (row,) = await b.outbox_rows("externalcontact/add_moment_task")
        assert row.status == "unknown"
        assert await moment_trail(b) == []  # not known to have gone out: not in the trail (yet)
        async with b.runtime.sessions() as s:
            report = await campaign_report(s, "card-post", b.clock.now())
    # Nothing is known of who published: nobody counts as reached.
    assert report["funnel"]["targeted"] == sum(map(len, BOOK.values())) and report["funnel"]["reached"] == 0
    assert report["moments"] == [{"channel": "post", "state": "failed", "asked": len(BOOK), "refused": 0,
                                  "published": 0, "visible_to": 0,
                                  "error": "add_moment_task did not complete within the follow-up window"}]


async def test_customer_tags_narrow_the_post_to_tagged_customers_and_their_managers(db_url: str,
                                                                                   tmp_path: Path) -> None:
    from handlers.tags.models import FollowTag, Tag, TagGroup

    sop, mat = playbook(tmp_path)
    (sop / "campaigns" / "card-post.yaml").write_text(CAMPAIGN.replace(
        "material: m-poster}", "material: m-poster, customer_tags: [产品持有/信用卡]}"), encoding="utf-8")
    tagged = {"wmA1": "m1", "wmB2": "m2"}  # (customer → the manager whose follow carries the tag)
    async with stack(db_url, tmp_path, start=local("2026-11-02", "09:00"), demo=False, routers=ROUTERS,
                     playbook=(sop, mat)) as b:
        await seeded(b)
        async with b.runtime.sessions() as s, s.begin():
            s.add(TagGroup(group_id="gprod", name="产品持有", owner="crm"))
            s.add(Tag(tag_id="tcard", group_id="gprod", name="信用卡"))
            s.add(Tag(tag_id="tpay", group_id="gprod", name="代发"))
            for ext, manager in tagged.items():
                s.add(FollowTag(userid=manager, external_userid=ext, tag_id="tcard", added_at=b.clock.now()))
            s.add(FollowTag(userid="m3", external_userid="wmC1", tag_id="tpay", added_at=b.clock.now()))
        await b.run_until(local("2026-11-03", "10:50"))
        (call,) = b.calls("externalcontact/add_moment_task")
        assert call.body["visible_range"] == {"sender_list": {"user_list": sorted(set(tagged.values()))},
                                              "external_contact_list": {"tag_list": ["tcard"]}}
        assert await touches(b) == dict.fromkeys(tagged, "asked")
