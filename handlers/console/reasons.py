"""Why an SOP step was skipped, as the cockpit groups it: by the first word of the reason the
planner and policy write into ``occurrence.reason`` (``handlers/sop/policy.py``), e.g.
``quiet hours 21:00-08:30``, ``cap per_week 2 reached``, ``WeCom monthly receive cap 30 reached``,
``opt-out tag 营销/退订``, ``material 'x' expired on …``, ``manager_daily_tasks 30 reached for …``,
``suitability: R3 > C2 …`` (适当性), ``consent: wealth withdrawn …``.
A reason nobody classified yet (``misfire: …``, ``template: …``) counts as ``other``, never lost."""

from __future__ import annotations

import re

QUIET, CAPS, OPT_OUT, MATERIAL, MANAGER_LIMIT, SUITABILITY, CONSENT, OTHER = (
    "quiet_hours", "caps", "opt_out", "material", "manager_limit", "suitability", "consent", "other")

#: The reason's first word → its kind.
_FIRST_WORD = {"quiet": QUIET, "cap": CAPS, "WeCom": CAPS, "opt-out": OPT_OUT, "material": MATERIAL,
               "manager_daily_tasks": MANAGER_LIMIT, "suitability": SUITABILITY, "consent": CONSENT}

#: Display order and Chinese labels of the kinds.
LABELS = {QUIET: "免打扰时段", CAPS: "触达次数上限", OPT_OUT: "客户退订", MATERIAL: "素材过期或未审批",
          MANAGER_LIMIT: "客户经理任务上限", SUITABILITY: "适当性不符", CONSENT: "客户未同意此类营销",
          OTHER: "其他"}

_SPLIT = re.compile(r"[\s:;]")


def reason_kind(reason: str | None) -> str:
    """The kind of a skip reason (``other`` for anything unknown or empty)."""
    first = _SPLIT.split((reason or "").strip(), maxsplit=1)[0]
    return _FIRST_WORD.get(first, OTHER)
