"""``sop/campaigns/*.yaml``: one-off campaigns, one per file.

A campaign picks an **audience** (tags, lifecycle stage and segments, member level, the branch or
team of the customer's manager, a CRM condition), runs inside a **window**, reaches customers
through **channels** (a 1:1 mass send through their manager, a task card to the manager, a post in
groups, or a company Moments post that the audience's managers publish) on given days and times,
and is measured against a **goal** (a CRM conversion event within N days
of the first send) at a **cost** (money per send and per conversion, e.g. the reward paid).

Variants of the material (weights) and a holdout work as for SOP steps: the campaign becomes an
experiment on source ``campaign:<name>`` (every channel), assigned by the same hash, recorded at
exposure, reported by ``scrm experiment report``. Every send goes through the SOP engine's
contact policy (quiet hours, caps, opt-out, material compliance, suitability and consent).

Read with the playbook's YAML reader, so every problem is ``file:line: key.path: message``.

```yaml
campaign: card-spend-dec
name: 信用卡年末消费季
window: {start: 2026-12-10, end: 2026-12-31}
audience:
  tags: {all: [产品持有/信用卡], none: [偏好/免打扰]}
  stages: [active]            # lifecycle stage (CRM attribute `stage`, written by lifecycle)
  segments: [payroll]         # lifecycle segments (`seg_segments`)
  member_levels: [gold]       # membership level
  branches: [华东分行/浦东支行]  # the primary manager's department path or one below it
  condition: "crm.card_spend_month < 3000"
channels:
  - {id: push, kind: private, on: 2026-12-10, at: "10:00", material: card-spend-offer}
  - {id: call, kind: task, on: 2026-12-12, at: "09:30", material: card-spend-call}
  # 朋友圈: one add_moment_task; the senders are the managers of the audience's customers
  - {id: post, kind: moments, on: 2026-12-11, at: "11:00", material: card-spend-poster,
     customer_tags: [产品持有/信用卡]}   # optional: only customers with one of these tags see it
variants:                     # weights are relative; the first is the control
  a: {weight: 1}
  b: {weight: 1, material: card-spend-offer-b}
holdout: 10                   # percent who receive nothing (compared against)
experiment: card-spend-copy   # the experiment's name in reports (default: the campaign's)
planned_sample: 2000          # per variant, before the report may call a winner
goal: {event: card.spend, within_days: 14}
cost: {per_send: 0.05, per_conversion: 50, currency: CNY}
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from scrm.playbook import Goal, Playbook
from scrm.playbook.expr import Condition
from scrm.playbook.fields import HHMM, Date, Ident, Strict
from scrm.playbook.flows import ConditionField, TagFilter
from scrm.playbook.issues import PlaybookError, PlaybookIssue
from scrm.playbook.validate import validation_issues
from scrm.playbook.yamlsrc import SourceFile, read_yaml

from .experiments import DEFAULT_ALPHA, HOLDOUT, MAX_HOLDOUT, VARIANT, Experiment, Variant, load_experiments

FOLDER = "campaigns"
#: Every campaign's sends are an SOP source of this prefix: ``campaign:<name>``.
SOURCE_PREFIX = "campaign:"
#: The experiment step that stands for every channel of a campaign.
ALL_CHANNELS = "*"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
ChannelKind = Literal["private", "task", "group", "moments"]
#: What add_moment_task takes besides text: images, a video or a link (no mini program, no file).
MOMENT_MATERIALS = ("text", "image", "link")


class Window(Strict):
    start: Date
    end: Date

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end < self.start:
            raise ValueError("end must not be before start")
        return self


class AudienceSpec(Strict):
    """Every criterion given must hold (unknown data counts as not matching)."""

    tags: TagFilter = Field(default_factory=TagFilter)
    stages: list[str] = Field(default_factory=list, description="lifecycle stages (CRM attribute stage)")
    segments: list[str] = Field(default_factory=list, description="any of these lifecycle segments")
    member_levels: list[str] = Field(default_factory=list, description="membership levels")
    branches: list[str] = Field(default_factory=list, description="manager's department path or one below it")
    condition: ConditionField | None = None


class ChannelSpec(Strict):
    id: Ident
    kind: ChannelKind = Field(description="private: 1:1 mass send through the manager; task: a card to the "
                                          "manager; group: a post in every active group of group_types; "
                                          "moments: a company Moments post the audience's managers publish")
    on: Date
    at: HHMM
    material: str
    group_types: list[str] = Field(default_factory=list, description="group channels: the group types posted to")
    customer_tags: list[str] = Field(default_factory=list, description="moments channels: only customers with "
                                                                       "one of these tags see the post")

    @model_validator(mode="after")
    def _groups_for_group_posts(self) -> ChannelSpec:
        if (self.kind == "group") != bool(self.group_types):
            raise ValueError("a group channel needs group_types (and only a group channel takes them)")
        if self.customer_tags and self.kind != "moments":
            raise ValueError("customer_tags belong to a moments channel only")
        return self


class VariantSpec(Strict):
    weight: float = Field(gt=0, le=10_000)
    material: str | None = Field(default=None, description="replaces the material of every private channel")
    task: str | None = Field(default=None, description="replaces the material of every task channel")


class CostSpec(Strict):
    per_send: Decimal = Field(default=Decimal(0), ge=0, description="money per message or card sent")
    per_conversion: Decimal = Field(default=Decimal(0), ge=0, description="money per converted customer (reward)")
    currency: str = "CNY"


class CampaignFile(Strict):
    campaign: str
    name: str = ""
    window: Window
    audience: AudienceSpec = Field(default_factory=AudienceSpec)
    channels: list[ChannelSpec] = Field(min_length=1)
    variants: dict[str, VariantSpec] = Field(default_factory=dict)
    holdout: float = Field(default=0, ge=0, le=MAX_HOLDOUT)
    experiment: str | None = None
    planned_sample: int = Field(default=1000, ge=1, le=100_000_000)
    alpha: float = Field(default=DEFAULT_ALPHA, gt=0, le=0.5)
    goal: Goal
    cost: CostSpec = Field(default_factory=CostSpec)
    active: bool = True


@dataclass(frozen=True)
class Channel:
    key: str
    kind: ChannelKind
    day: date
    at: time
    material: str
    group_types: tuple[str, ...] = ()
    customer_tags: tuple[str, ...] = ()  # moments: WeCom shows the post only to customers with one


@dataclass(frozen=True)
class Audience:
    tags: TagFilter
    stages: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    member_levels: tuple[str, ...] = ()
    branches: tuple[str, ...] = ()
    condition: Condition | None = None


@dataclass(frozen=True)
class Cost:
    per_send: Decimal
    per_conversion: Decimal
    currency: str


@dataclass(frozen=True)
class Campaign:
    name: str
    label: str
    start: date
    end: date
    audience: Audience
    channels: tuple[Channel, ...]
    goal: Goal
    cost: Cost
    experiment: Experiment | None  # variants and holdout: None when everyone gets the channels as written
    origin: str = ""

    @property
    def source(self) -> str:
        return SOURCE_PREFIX + self.name


def experiment_of(data: CampaignFile, origin: str) -> Experiment | None:
    """The campaign as an experiment over all its channels (None without variants or holdout)."""
    if not data.variants and not data.holdout:
        return None
    variants = tuple(Variant(n, v.weight, v.material, v.task) for n, v in data.variants.items()) or (Variant("a", 1),)
    return Experiment(name=data.experiment or data.campaign, source=SOURCE_PREFIX + data.campaign,
                      step=ALL_CHANNELS, variants=variants, control=variants[0].name, holdout=data.holdout,
                      goal=data.goal, planned_sample=data.planned_sample, alpha=data.alpha, label=data.name,
                      origin=origin)


def campaign_of(data: CampaignFile, origin: str) -> Campaign:
    a = data.audience
    return Campaign(
        name=data.campaign, label=data.name, start=data.window.start, end=data.window.end,
        audience=Audience(a.tags, tuple(a.stages), tuple(a.segments), tuple(a.member_levels),
                          tuple(b.strip("/") for b in a.branches), a.condition),
        channels=tuple(Channel(c.id, c.kind, c.on, c.at, c.material, tuple(c.group_types), tuple(c.customer_tags))
                       for c in data.channels),
        goal=data.goal, cost=Cost(data.cost.per_send, data.cost.per_conversion, data.cost.currency),
        experiment=experiment_of(data, origin), origin=origin)


def to_spec(data: CampaignFile) -> dict[str, Any]:
    """The JSON the ``campaign`` table keeps: the file's own data, normalised."""
    spec = data.model_dump(mode="json", exclude={"campaign": True, "audience": {"condition"}})
    spec["audience"]["condition"] = data.audience.condition.text if data.audience.condition else None
    return spec


def from_spec(name: str, spec: dict[str, Any], origin: str = "") -> Campaign:
    return campaign_of(CampaignFile.model_validate({**spec, "campaign": name}), origin)


def load_campaign_files(sop_dir: Path, pb: Playbook) -> tuple[tuple[CampaignFile, str], ...]:
    """Every ``sop_dir/campaigns/*.yaml`` checked against ``pb`` (none when the folder is absent),
    each with its origin (``sop/campaigns/x.yaml:1``); raises :class:`PlaybookError` listing every
    problem of every file."""
    folder = sop_dir / FOLDER
    if not folder.is_dir():
        return ()
    out: list[tuple[CampaignFile, str]] = []
    problems: list[PlaybookIssue] = []
    for path in sorted(folder.glob("*.yaml")):
        source, issues = read_yaml(path, f"{sop_dir.name}/{FOLDER}/{path.name}")
        problems += issues
        if source is None or issues:
            continue
        if source.data is None:
            problems.append(source.issue((), "file is empty"))
            continue
        try:
            data = CampaignFile.model_validate(source.data)
        except ValidationError as exc:
            problems += validation_issues(source, exc, model=CampaignFile)
            continue
        found = _check(source, data, pb)
        problems += found
        if found:
            continue
        for other, where in out:
            if other.campaign == data.campaign:
                problems.append(source.issue(("campaign",), f"{data.campaign!r} is declared in {where} too"))
            elif (other.experiment or other.campaign) == (data.experiment or data.campaign) and \
                    (other.variants or other.holdout) and (data.variants or data.holdout):
                problems.append(source.issue(("experiment",), f"experiment name {data.experiment or data.campaign!r} "
                                                              f"is used by {where} too"))
        out.append((data, f"{source.display}:{source.line_of(())}"))
    if problems:
        raise PlaybookError(problems)
    return tuple(out)


def load_campaigns(sop_dir: Path, pb: Playbook) -> tuple[Campaign, ...]:
    """The active campaigns of ``sop_dir/campaigns/`` (see :func:`load_campaign_files`)."""
    return tuple(campaign_of(d, origin) for d, origin in load_campaign_files(sop_dir, pb) if d.active)


def check_campaigns(sop_dir: Path, pb: Playbook) -> list[PlaybookIssue]:
    """Every problem of the campaign files (``scrm campaign validate``, ``scrm sop validate``),
    including a campaign's experiment named like one of ``sop/experiments/`` (both are stored in
    the one ``experiment`` table: the service would refuse to store either)."""
    try:
        files = load_campaign_files(sop_dir, pb)
    except PlaybookError as exc:
        return exc.errors
    try:
        taken = {e.name for e in load_experiments(sop_dir, pb)}
    except PlaybookError:
        taken = set()  # their own problems are `scrm experiments validate`'s to show
    out: list[PlaybookIssue] = []
    for data, origin in files:
        e = campaign_of(data, origin).experiment
        if e is not None and e.name in taken:
            where, _, line = origin.rpartition(":")
            out.append(PlaybookIssue(where, int(line), "experiment", f"experiment {e.name!r} is also declared in "
                                                                      f"{sop_dir.name}/experiments/; name it apart"))
    return out


def _check(src: SourceFile, data: CampaignFile, pb: Playbook) -> list[PlaybookIssue]:
    """What the schema cannot see: names, the playbook's materials and tags, the window, quiet hours."""
    bad: list[PlaybookIssue] = []
    if not _NAME.match(data.campaign):
        bad.append(src.issue(("campaign",), f"must be a name (a-z, 0-9, - and _, up to 64), got {data.campaign!r}"))
    if data.experiment is not None and not _NAME.match(data.experiment):
        bad.append(src.issue(("experiment",), f"must be a name (a-z, 0-9, - and _), got {data.experiment!r}"))
    if data.experiment is not None and not (data.variants or data.holdout):
        bad.append(src.issue(("experiment",), "names an experiment but the campaign has no variants or holdout"))
    known_tags = pb.all_tags()
    for field in ("all", "any", "none"):
        for i, tag in enumerate(getattr(data.audience.tags, field)):
            if known_tags and tag not in known_tags:
                bad.append(src.issue(("audience", "tags", field, i), f"unknown tag {tag!r} (not in sop/tags.yaml)"))
    seen: set[str] = set()
    for i, c in enumerate(data.channels):
        at = ("channels", i)
        if c.id in seen:
            bad.append(src.issue((*at, "id"), f"channel id {c.id!r} is used twice"))
        seen.add(c.id)
        if not data.window.start <= c.on <= data.window.end:
            bad.append(src.issue((*at, "on"), f"{c.on} is outside the window {data.window.start}..{data.window.end}"))
        if pb.policy.quiet_hours.contains(c.at):
            bad.append(src.issue((*at, "at"), f"falls in quiet hours {pb.policy.quiet_hours}"))
        bad += _material(src, pb, (*at, "material"), c.material, _USE[c.kind])
        for j, gt in enumerate(c.group_types):
            if gt not in pb.group_types:
                bad.append(src.issue((*at, "group_types", j), f"unknown group type {gt!r}; known: "
                                                              f"{', '.join(sorted(pb.group_types)) or 'none'}"))
        if c.kind == "group" and (data.variants or data.holdout):
            bad.append(src.issue((*at, "kind"), "a group post reaches everyone in the chat: a campaign with variants "
                                                "or a holdout cannot have a group channel"))
        if c.kind == "moments":
            bad += _moment(src, pb, at, c, bool(data.variants or data.holdout))
    for name, v in data.variants.items():
        here: tuple[str, ...] = ("variants", name)
        if not VARIANT.match(name) or name == HOLDOUT:
            bad.append(src.issue(here, f"must be a lower-case name (a-z, 0-9, - and _), not {HOLDOUT!r}"))
        for part, kind in (("material", "private"), ("task", "task")):
            mid = getattr(v, part)
            if mid is None:
                continue
            bad += _material(src, pb, (*here, part), mid, "private" if kind == "private" else None)
            if not any(c.kind == kind for c in data.channels):
                bad.append(src.issue((*here, part), f"the campaign has no {kind} channel for this to replace"))
    if len(data.variants) == 1 and not data.holdout:
        bad.append(src.issue(("variants",), "one variant needs a holdout to compare with (or give two or more)"))
    return bad


#: The material channel (``materials/*.yaml`` ``channels:``) a campaign channel kind needs.
_USE: dict[ChannelKind, str | None] = {"private": "private", "task": None, "group": "group", "moments": "moments"}


def _moment(src: SourceFile, pb: Playbook, at: tuple[Any, ...], c: ChannelSpec, split: bool) -> list[PlaybookIssue]:
    """What WeCom's add_moment_task and a post seen by every customer of a manager allow."""
    bad: list[PlaybookIssue] = []
    if split:
        bad.append(src.issue((*at, "kind"), "a Moments post is seen by every customer of the managers who publish "
                                            "it: a campaign with variants or a holdout cannot have a moments channel"))
    material = pb.materials.get(c.material)
    if material is not None and material.type not in MOMENT_MATERIALS:
        bad.append(src.issue((*at, "material"), f"material {c.material!r} is a {material.type}; WeCom Moments take "
                                                f"text with an image or a link (add_moment_task has no "
                                                f"{material.type})"))
    if material is not None and material.risk_level is not None:
        bad.append(src.issue((*at, "material"), f"material {c.material!r} describes a product (risk_level): a Moments "
                                                f"post cannot be kept from customers it is not suitable for"))
    known_tags = pb.all_tags()
    for j, tag in enumerate(c.customer_tags):
        if known_tags and tag not in known_tags:
            bad.append(src.issue((*at, "customer_tags", j), f"unknown tag {tag!r} (not in sop/tags.yaml)"))
    return bad


def _material(src: SourceFile, pb: Playbook, at: tuple[Any, ...], mid: str, use: str | None) -> list[PlaybookIssue]:
    material = pb.materials.get(mid)
    if material is None:
        return [src.issue(at, f"unknown material {mid!r}")]
    if use is not None and use not in material.channels:
        return [src.issue(at, f"material {mid!r} is not for {use} sends (its channels: "
                              f"{', '.join(material.channels)})")]
    return []
