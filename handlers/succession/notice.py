"""One card per new manager and batch: who they take over, each customer's tier and open tasks.

Sent once WeCom answered every call of the batch for that manager (the transfers have started;
WeCom completes them within 24 hours), so it arrives within the slot of the handover, not a day
later. It is a task card (Done), recorded like the SOP's, keyed by batch and manager: one, ever.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Customer, Member
from handlers.crm.api import Binding, CrmCustomer, crm_settings
from handlers.sop.api import TaskCard, issue_card, open_tasks
from handlers.succession.models import SuccessionBatch, SuccessionItem
from scrm.kernel.config import Settings
from scrm.kernel.outbox import Outbox

SHOWN = 15  # customers listed by name; the rest are counted
TITLE = "客户交接"


async def tell_takeovers(session: AsyncSession, outbox: Outbox, settings: Settings, batch: SuccessionBatch,
                         items: Sequence[SuccessionItem], now: datetime) -> list[str]:
    """Card every takeover of ``batch`` whose calls are all answered and who was not told yet."""
    told = list(batch.notified or [])
    by_takeover: dict[str, list[SuccessionItem]] = {}
    for item in items:
        if item.takeover_userid:
            by_takeover.setdefault(item.takeover_userid, []).append(item)
    sent: list[str] = []
    for takeover, mine in sorted(by_takeover.items()):
        if takeover in told or any(i.status == "planned" for i in mine):
            continue
        taken = [i for i in mine if i.status in ("waiting", "done")]
        if taken:
            text = await _text(session, settings, batch, taken)
            today = now.astimezone(ZoneInfo(settings.playbook.timezone)).date()
            card = TaskCard(key=f"succession:{batch.id}:{takeover}", userid=takeover, target="",
                            source="succession", title=TITLE, text=text, day=today, buttons=("done",))
            await issue_card(session, outbox, None, card, agent_id=settings.wecom.agent_id, now=now)
            sent.append(takeover)
        told.append(takeover)
    if sent or len(told) != len(batch.notified or []):
        batch.notified = told
    return sent


async def _text(session: AsyncSession, settings: Settings, batch: SuccessionBatch,
                items: Sequence[SuccessionItem]) -> str:
    customers = [i.target for i in items if i.target_type == "customer"]
    groups = [i.target for i in items if i.target_type == "group"]
    old = await session.scalar(select(Member.name).where(Member.userid == batch.handover_userid))
    names = dict((await session.execute(select(Customer.external_userid, Customer.name)
                                        .where(Customer.external_userid.in_(customers)))).all())
    tiers = await _tiers(session, settings, customers)
    tasks = await open_tasks(session, customers)
    why = "离职交接" if batch.kind == "resigned" else "管户调整"
    head = f"{why}：{old or batch.handover_userid}的{len(customers)}位客户"
    head += f"和{len(groups)}个客户群" if groups else ""
    lines = [head + "转由您服务（客户24小时内完成接替）。"]
    for ext in customers[:SHOWN]:
        tier = tiers.get(ext)
        open_n = tasks.get(ext, 0)
        lines.append(f"· {names.get(ext) or ext}" + (f"（{tier}）" if tier else "")
                     + (f" 待办{open_n}" if open_n else ""))
    if len(customers) > SHOWN:
        lines.append(f"……等共{len(customers)}位")
    return "\n".join(lines)


async def _tiers(session: AsyncSession, settings: Settings, customers: list[str]) -> dict[str, str]:
    """Each customer's tier from the CRM attribute ``[crm] tier_attribute``."""
    attribute = crm_settings(settings).tier_attribute
    rows = await session.execute(
        select(Customer.external_userid, CrmCustomer.attributes)
        .join(CrmCustomer, CrmCustomer.crm_id == Customer.crm_id).where(Customer.external_userid.in_(customers)))
    out = {ext: str(attrs.get(attribute)) for ext, attrs in rows.all() if attrs and attrs.get(attribute)}
    rows = await session.execute(
        select(Binding.external_userid, CrmCustomer.attributes)
        .join(CrmCustomer, CrmCustomer.crm_id == Binding.crm_id).where(Binding.external_userid.in_(customers)))
    for ext, attrs in rows.all():
        if ext not in out and attrs and attrs.get(attribute):
            out[ext] = str(attrs.get(attribute))
    return out
