"""Who a campaign is for: :func:`admits` decides for one customer from what the SOP planner
already read (tags, CRM attributes) and the :class:`Facts` loaded here per batch (member level,
the primary manager's department).

* lifecycle **stage** and **segments** are the CRM attributes the lifecycle feature writes
  (``stage``, ``seg_segments``: see ``handlers.lifecycle.api.MIRRORED``);
* the **member level** is read from the membership ledger's ``membership_account`` table by name:
  membership requires the SOP engine, which requires campaigns, so its api cannot be imported
  here without a cycle; the table's two columns read are its documented, stable shape;
* a **branch** entry matches the manager's department path or any department below it
  (``华东分行`` matches ``华东分行/浦东支行/零售一组``), so a team is a longer path.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import column, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Member
from scrm.playbook.expr import EvaluationError

from .campaign import Audience

_CHUNK = 1000
MEMBERSHIP_ACCOUNT = table("membership_account", column("external_userid"), column("level"))


@dataclass(frozen=True)
class Facts:
    """What the audience needs beyond the planner's customer record."""

    levels: Mapping[str, str]  # external_userid → membership level
    departments: Mapping[str, str]  # manager userid → department path


def needs_facts(audience: Audience) -> bool:
    return bool(audience.member_levels or audience.branches)


async def load_facts(session: AsyncSession, customers: Sequence[str], managers: Collection[str]) -> Facts:
    """Levels of ``customers`` and departments of ``managers`` (a few chunked queries)."""
    levels: dict[str, str] = {}
    for i in range(0, len(customers), _CHUNK):
        chunk = list(customers[i:i + _CHUNK])
        rows = await session.execute(select(MEMBERSHIP_ACCOUNT.c.external_userid, MEMBERSHIP_ACCOUNT.c.level)
                                     .where(MEMBERSHIP_ACCOUNT.c.external_userid.in_(chunk)))
        levels.update({str(e): str(lv) for e, lv in rows.all()})
    departments: dict[str, str] = {}
    ids = sorted(managers)
    for i in range(0, len(ids), _CHUNK):
        rows = await session.execute(select(Member.userid, Member.department)
                                     .where(Member.userid.in_(ids[i:i + _CHUNK])))
        departments.update({u: d or "" for u, d in rows.all()})
    return Facts(levels, departments)


def in_branch(department: str, branches: Collection[str]) -> bool:
    return any(department == b or department.startswith(b + "/") for b in branches)


def admits(audience: Audience, *, customer: str, manager: str, tags: Collection[str],
           attributes: Mapping[str, object], facts: Facts | None) -> bool:
    """Does every criterion of ``audience`` hold? Unknown data counts as not matching."""
    if not audience.tags.matches(tags):
        return False
    if audience.stages and attributes.get("stage") not in audience.stages:
        return False
    if audience.segments and not set(_listed(attributes.get("seg_segments"))) & set(audience.segments):
        return False
    if audience.member_levels and (facts is None or facts.levels.get(customer) not in audience.member_levels):
        return False
    if audience.branches and (facts is None or not in_branch(facts.departments.get(manager, ""), audience.branches)):
        return False
    if audience.condition is not None:
        values = {f"crm.{k}": v for k, v in attributes.items()}
        try:
            return audience.condition.evaluate(values, tags)
        except EvaluationError:
            return False
    return True


def _listed(value: object) -> list[str]:
    """A multi-valued CRM attribute: a list, or a text separated by commas."""
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    if isinstance(value, str):
        return [v.strip() for v in value.replace("，", ",").split(",") if v.strip()]
    return []
