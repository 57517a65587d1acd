"""Plan the campaign channels (``sop/campaigns/``, campaigns feature) due in a slot, under the
same contact policy as every SOP step: quiet hours, misfire grace, opt-out, material compliance,
suitability and consent, the customer's caps across every SOP, the manager's daily task limit.

A channel is a step of source ``campaign:<name>``: its sends get the SOP send keys (one per
campaign, channel, customer and day), go through the executor, count against caps, and are
recorded as the campaign's touches. A campaign's variants and holdout come from the experiment
book like a path step's: a holdout customer passes the same checks, then receives nothing.

A Moments channel is one post (one add_moment_task) whose senders are the managers of the
audience's customers (those with one of its ``customer_tags``, when given): it is planned once
the audience is known, after every batch. It is no message to anyone, so only the slot's own
checks apply (late, quiet hours, the material's compliance), not a customer's caps or opt-out:
WeCom cannot keep one customer from seeing their manager's post.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.campaigns.api import HOLDOUT_REASON, Campaign, Channel, admits, load_facts, needs_facts

from .model import MOMENT_TARGET, Decision, Planned, Skip, send_key
from .targets import CustomerTarget, iter_customers, iter_groups

if TYPE_CHECKING:  # the planner imports this module: its helpers are used, not a second policy
    from .planner import SlotPlanner


async def plan_campaigns(planner: SlotPlanner, session: AsyncSession) -> AsyncIterator[Decision]:
    """Every decision of the campaign channels due at the planner's slot."""
    due = [(c, ch) for c, ch in planner.state.campaigns.due(planner.day, planner.at) if planner._wanted(c.source)]
    for campaign, channel in due:
        if channel.kind == "group":
            async for d in _groups(planner, session, campaign, channel):
                yield d
    due = [(c, ch) for c, ch in due if ch.kind != "group"]
    if not due:
        return
    posts: dict[tuple[str, str], list[tuple[str, str]]] = {(c.name, ch.key): [] for c, ch in due
                                                           if ch.kind == "moments"}
    gate = planner.gate
    async for batch in iter_customers(session, planner.state.tags):
        await gate.load_sends(session, [c.external_userid for c in batch])
        await gate.load_customers(session, batch)
        facts = None
        if any(needs_facts(c.audience) for c, _ in due):
            managers = {c.manager.userid for c in batch if c.manager is not None}
            facts = await load_facts(session, [c.external_userid for c in batch], managers)
        for customer in batch:
            manager = customer.manager
            if manager is None:
                continue  # nobody to send through
            for campaign, channel in due:
                if admits(campaign.audience, customer=customer.external_userid, manager=manager.userid,
                          tags=customer.tags, attributes=customer.attributes, facts=facts):
                    if channel.kind == "moments":
                        if not channel.customer_tags or set(channel.customer_tags) & set(customer.tags):
                            posts[(campaign.name, channel.key)].append((customer.external_userid, manager.userid))
                        continue
                    decision = _decide(planner, campaign, channel, customer)
                    if decision is not None:
                        yield decision
    for campaign, channel in due:
        if channel.kind == "moments":
            for d in _moment(planner, campaign, channel, posts[(campaign.name, channel.key)]):
                yield d


def _moment(planner: SlotPlanner, campaign: Campaign, channel: Channel,
            audience: list[tuple[str, str]]) -> list[Decision]:
    """One post for the whole audience, or — the slot's checks say no — a skip for each customer."""
    if not audience:
        return []
    gate = planner.gate
    reason = (planner._late(planner.pb.policy.misfire_grace) or gate.quiet(planner.at)
              or gate.material(channel.material))
    if reason:
        return [Skip(campaign.source, channel.key, ext, planner.day, reason, sender=m) for ext, m in audience]
    return [Planned("moments", campaign.source, channel.key, MOMENT_TARGET, "", planner.day, planner.at,
                    channel.material, planner._base_context(""), audience=tuple(audience),
                    visible_tags=channel.customer_tags)]


async def _groups(planner: SlotPlanner, session: AsyncSession, campaign: Campaign,
                  channel: Channel) -> AsyncIterator[Decision]:
    """A group channel: a post in every active group of its types, as a calendar step's (the
    audience's customer criteria do not apply: a post reaches everyone in the chat)."""
    source, key, gate = campaign.source, channel.key, planner.gate
    async for group in iter_groups(session, list(channel.group_types)):
        if send_key(source, key, group.chat_id, planner.day) in planner.done:
            continue
        reason = (planner._late(planner.pb.policy.misfire_grace) or gate.quiet(planner.at)
                  or gate.material(channel.material) or gate.group(channel.material))
        if reason:
            yield Skip(source, key, group.chat_id, planner.day, reason, sender=group.owner)
        else:
            yield Planned("group", source, key, group.chat_id, group.owner, planner.day, planner.at,
                          channel.material, planner._group_context(group))


def _decide(planner: SlotPlanner, campaign: Campaign, channel: Channel, c: CustomerTarget) -> Decision | None:
    source, key, ext = campaign.source, channel.key, c.external_userid
    if send_key(source, key, ext, planner.day) in planner.done:
        return None  # already written by an earlier run of this slot
    manager = c.manager
    assert manager is not None
    gate = planner.gate
    material = channel.material
    arm = planner.state.experiments.arm(source, key, ext)
    if arm is not None:
        material = (arm.material if channel.kind == "private" else arm.task) or material
    reason = (planner._late(planner.pb.policy.misfire_grace) or gate.quiet(planner.at) or gate.opted_out(c.tags)
              or gate.material(material) or gate.suitable(material, c))
    if reason is None and channel.kind == "private":
        reason = gate.customer_caps(ext)
    if reason:
        return Skip(source, key, ext, planner.day, reason, sender=manager.userid)
    if arm is not None and arm.holdout:
        return Skip(source, key, ext, planner.day, HOLDOUT_REASON, sender=manager.userid)
    ctx = planner._customer_context(c, manager.userid, manager.remark)
    if channel.kind == "private":
        gate.count_send(ext)
        return Planned("private", source, key, ext, manager.userid, planner.day, planner.at, material, ctx,
                       checks=gate.checks(material, c))
    task = Planned("task", source, key, ext, manager.userid, planner.day, planner.at, material, ctx)
    over = gate.manager_tasks(manager.userid)
    if over:  # carried over to the next workday with room, as a path step's card
        return Skip(source, key, ext, planner.day, over, carry=task, sender=manager.userid)
    gate.count_task(manager.userid)
    return task
