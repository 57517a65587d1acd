"""The validated playbook as the rest of the service sees it: read-only lookups, no I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from .flows import GroupCalendar, PathSop, Reminder
from .holidays import WorkCalendar
from .issues import PlaybookIssue
from .models import Channel, GroupType, Material, Policy, TagGroup
from .suitability import DEFAULT_RULES, SuitabilityRules
from .surveys import Survey


@dataclass(frozen=True)
class Playbook:
    """Everything under sop/ and materials/, checked. Built only by :func:`load_playbook`."""

    policy: Policy
    work_calendar: WorkCalendar
    materials: Mapping[str, Material]
    default_welcome: str | None
    channels: Mapping[str, Channel]
    group_types: Mapping[str, GroupType]
    tag_groups: Mapping[str, TagGroup]
    calendars: Mapping[str, GroupCalendar]
    paths: Mapping[str, PathSop]
    reminders: Mapping[str, Reminder]
    warnings: tuple[PlaybookIssue, ...] = ()
    # "calendar:payroll-groups" → "sop/calendars/payroll.yaml", for plans and logs.
    origins: Mapping[str, str] = field(default_factory=dict)
    # material id → the active steps that send it ("sop/calendars/payroll.yaml:12 steps[2].send"):
    # what an expired or unapproved material skips (see scrm.playbook.compliance).
    material_uses: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # sop/compliance/suitability.yaml: who may receive a product material (适当性) and consent.
    suitability: SuitabilityRules = DEFAULT_RULES
    # sop/feedback.yaml: the feedback surveys a ``survey:`` material opens.
    surveys: Mapping[str, Survey] = field(default_factory=dict)

    def welcome_for(self, channel_key: str | None) -> Material | None:
        """The welcome material for a new contact from ``channel_key`` (its ``state``)."""
        channel = self.channels.get(channel_key or "")
        mid = (channel.welcome if channel else None) or self.default_welcome
        return self.materials.get(mid) if mid else None

    def tag_owner(self, tag: str) -> Literal["crm", "manager"] | None:
        """Who owns ``group/tag``: CRM sync (sets and removes) or managers (never removed)."""
        group, _, name = tag.partition("/")
        spec = self.tag_groups.get(group)
        if spec is None or name not in spec.tag_names():
            return None
        return spec.owner

    def all_tags(self) -> set[str]:
        """Every declared tag as ``group/tag``."""
        return {f"{g}/{t}" for g, spec in self.tag_groups.items() for t in spec.tag_names()}

    def classify_group(self, name: str, owner: str, chat_id: str) -> str | None:
        """The group type of a customer group: explicit chat ids win, then owners, then names."""
        for key, gt in self.group_types.items():
            if chat_id in gt.classify.chats:
                return key
        for key, gt in self.group_types.items():
            if owner in gt.classify.owners:
                return key
        for key, gt in self.group_types.items():
            if gt.classify.name and re.search(gt.classify.name, name):
                return key
        return None
