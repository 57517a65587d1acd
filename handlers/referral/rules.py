"""``sop/referral.yaml``, the file ops admins own: which CRM event makes a referred friend
count as converted and within how many days of arriving, what the referrer and the friend earn
then (points and growth in the membership ledger, or a gift a manager hands over), the referrer's
monthly cap, what counts as a burst of referrals worth a look, and how many super users each
segment shows.

Read with the playbook's YAML reader (YAML 1.2, every key's line), so every problem is one
``file:line: key.path: message``. A missing file means no referral earns anything (codes still
attribute friends). Pure.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scrm.playbook.issues import PlaybookError, PlaybookIssue, sort_issues
from scrm.playbook.rulefile import RuleReader, problems, reloading
from scrm.playbook.yamlsrc import SourceFile, read_yaml

REFERRAL_FILE = "referral.yaml"
ROLES = ("referrer", "friend")


@dataclass(frozen=True)
class Reward:
    """What one side earns on a qualifying conversion: points and growth in the membership
    ledger, and/or a gift its manager hands over (a task card)."""

    points: int = 0
    growth: int = 0
    gift: str = ""

    @property
    def empty(self) -> bool:
        return not (self.points or self.growth or self.gift)


@dataclass(frozen=True)
class Burst:
    """``referrals`` or more friends of one referrer arriving within ``within_hours`` is flagged."""

    referrals: int = 5
    within_hours: int = 24


@dataclass(frozen=True)
class ReferralRules:
    qualify_on: tuple[str, ...] = ()  # CRM event kinds (without "crm.")
    within_days: int = 30
    referrer: Reward = field(default_factory=Reward)
    friend: Reward = field(default_factory=Reward)
    referrer_per_month: int = 0  # rewarded referrals per referrer and calendar month (local); 0: no cap
    burst: Burst = field(default_factory=Burst)
    super_users: int = 3  # per segment in the report
    source: str = "(no referral.yaml)"

    def reward(self, role: str) -> Reward:
        return self.referrer if role == "referrer" else self.friend


def load_referral(sop_dir: Path, crm_kinds: Collection[str]) -> ReferralRules:
    """``sop_dir/referral.yaml`` (nothing earns when absent); raises :class:`PlaybookError`
    listing every problem. ``crm_kinds``: the CRM event kinds ``qualify.on`` may name."""
    path = sop_dir / REFERRAL_FILE
    if not path.exists():
        return ReferralRules()
    src, issues = read_yaml(path, f"{sop_dir.name}/{REFERRAL_FILE}")
    if src is None or issues:
        raise PlaybookError(issues)
    reader = _Reader(src, crm_kinds)
    rules = reader.rules()
    if reader.problems:
        raise PlaybookError(sort_issues(reader.problems))
    return rules


# :func:`load_referral`, read again only when the file changed (handlers read it per event).
load_current = reloading(load_referral, REFERRAL_FILE)


def check(sop_dir: Path, crm_kinds: Collection[str]) -> list[PlaybookIssue]:
    """Every problem of the file (``scrm referral check``, ``scrm sop validate``)."""
    return problems(lambda: load_referral(sop_dir, crm_kinds))


class _Reader(RuleReader):
    """Walks the file, collecting every problem instead of stopping at the first."""

    def __init__(self, src: SourceFile, crm_kinds: Collection[str]) -> None:
        super().__init__(src)
        self.crm_kinds = frozenset(crm_kinds)

    def rules(self) -> ReferralRules:
        data = self.mapping(self.src.data, (), ("qualify", "rewards", "caps", "flags", "super_users"),
                            required=("qualify", "rewards"))
        kinds, days = self.qualify(data.get("qualify"))
        rewards = self.mapping(data.get("rewards"), ("rewards",), ROLES) if "rewards" in data else {}
        referrer = self.reward(rewards.get("referrer"), ("rewards", "referrer"))
        friend = self.reward(rewards.get("friend"), ("rewards", "friend"))
        if rewards and referrer.empty and friend.empty:
            self.bad(("rewards",), "rewards nobody: give the referrer or the friend points:, growth: or gift:")
        caps = self.mapping(data.get("caps", {}), ("caps",), ("referrer_per_month",))
        per_month = self.whole(caps.get("referrer_per_month", 0), ("caps", "referrer_per_month"), high=1000)
        flags = self.mapping(data.get("flags", {}), ("flags",), ("burst",))
        burst = self.burst(flags.get("burst"))
        supers = self.mapping(data.get("super_users", {}), ("super_users",), ("top",))
        top = self.whole(supers.get("top", 3), ("super_users", "top"), low=1, high=100)
        return ReferralRules(qualify_on=kinds, within_days=days, referrer=referrer, friend=friend,
                             referrer_per_month=per_month, burst=burst, super_users=top, source=self.src.display)

    def qualify(self, raw: Any) -> tuple[tuple[str, ...], int]:
        at: tuple[Any, ...] = ("qualify",)
        if raw is None:
            return (), 30
        data = self.mapping(raw, at, ("on", "within_days"), required=("on", "within_days"))
        on = data.get("on", [])
        items = [on] if isinstance(on, str) else on
        kinds: list[str] = []
        if not isinstance(items, list) or not items:
            self.bad((*at, "on"), "must be a CRM event (crm.<kind>) or a list of them")
            items = []
        for i, item in enumerate(items):
            here = (*at, "on") if isinstance(on, str) else (*at, "on", i)
            if not isinstance(item, str) or not item.startswith("crm.") or item[4:] not in self.crm_kinds:
                known = ", ".join(f"crm.{k}" for k in sorted(self.crm_kinds))
                self.bad(here, f"unknown CRM event {item!r}; expected one of {known}")
            elif item[4:] in kinds:
                self.bad(here, f"{item!r} is listed twice")
            else:
                kinds.append(item[4:])
        days = self.whole(data.get("within_days", 30), (*at, "within_days"), low=1, high=366)
        return tuple(kinds), days

    def reward(self, raw: Any, at: tuple[Any, ...]) -> Reward:
        if raw is None:
            return Reward()
        data = self.mapping(raw, at, ("points", "growth", "gift"))
        gift = data.get("gift", "")
        if not isinstance(gift, str) or ("gift" in data and not gift.strip()):
            self.bad((*at, "gift"), "must be a non-empty text (what the manager hands over)")
            gift = ""
        return Reward(self.whole(data.get("points", 0), (*at, "points")),
                      self.whole(data.get("growth", 0), (*at, "growth")), gift.strip()[:200])

    def burst(self, raw: Any) -> Burst:
        if raw is None:
            return Burst()
        at: tuple[Any, ...] = ("flags", "burst")
        data = self.mapping(raw, at, ("referrals", "within_hours"), required=("referrals", "within_hours"))
        return Burst(self.whole(data.get("referrals", 5), (*at, "referrals"), low=2, high=10_000),
                     self.whole(data.get("within_hours", 24), (*at, "within_hours"), low=1, high=24 * 31))
