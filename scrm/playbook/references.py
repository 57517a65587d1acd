"""Checks that need more than one file: ids, tags, channels of use, compliance, quiet hours.

Each check reports at the *referring* key (``steps[3].send``), because that is the line the
admin just edited. A file that failed its own validation still contributes the ids it names,
so one broken material does not also produce "unknown material" at every use of it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from pathlib import Path
from typing import Generic, TypeVar

from .flows import CalendarStep, GroupCalendar, PathSop, RecurringRule, Reminder, TagFilter
from .issues import KeyPath, PlaybookIssue, format_key_path
from .models import Channel, GroupType, Material, Policy, TagGroup, Use
from .surveys import Survey
from .templates import check_template, template_fields
from .yamlsrc import SourceFile

EXPIRY_WARNING_DAYS = 30


T = TypeVar("T")


@dataclass
class Located(Generic[T]):
    """A validated object and where it sits."""

    value: T
    source: SourceFile
    path: KeyPath


@dataclass
class Loaded:
    """What the loader validated, file by file, before cross-checking."""

    policy: Located[Policy] | None = None
    materials: dict[str, Located[Material]] = field(default_factory=dict)
    known_ids: set[str] = field(default_factory=set)  # material ids seen, even in invalid items
    default_welcome: Located[str] | None = None
    channels: dict[str, Located[Channel]] = field(default_factory=dict)
    group_types: dict[str, Located[GroupType]] = field(default_factory=dict)
    known_group_types: set[str] = field(default_factory=set)
    tag_groups: dict[str, TagGroup] = field(default_factory=dict)
    tags_ok: bool = True  # False: tags.yaml is broken, so "unknown tag" would be noise
    calendars: list[Located[GroupCalendar]] = field(default_factory=list)
    paths: list[Located[PathSop]] = field(default_factory=list)
    reminders: dict[str, Located[Reminder]] = field(default_factory=dict)
    surveys: dict[str, Located[Survey]] = field(default_factory=dict)
    known_surveys: set[str] = field(default_factory=set)  # survey ids seen, even in invalid entries


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


class Checker:
    """Runs every cross-file check and collects errors and warnings."""

    def __init__(self, loaded: Loaded, today: date, materials_dir: Path) -> None:
        self.x = loaded
        self.today = today
        self.materials_dir = materials_dir
        self.errors: list[PlaybookIssue] = []
        self.warnings: list[PlaybookIssue] = []
        # material id → every active step (``file:line: key``) that sends it: what an expiry skips.
        self.uses: dict[str, list[str]] = {}
        # Materials the content rules report themselves (scrm.playbook.contentrules), once.
        self.content_flagged: set[str] = set()
        self.tag_owner = {f"{g}/{t}": spec.owner for g, spec in loaded.tag_groups.items() for t in spec.tag_names()}

    def run(self) -> None:
        self.check_materials()
        self.check_surveys()
        self.check_policy()
        self.check_channels()
        self.check_group_types()
        for cal in self.x.calendars:
            self.check_calendar(cal)
        for path in self.x.paths:
            self.check_path(path)
        for rem in self.x.reminders.values():
            self.check_reminder(rem)
        self.check_compliance()

    # --- helpers ---

    def error(self, src: SourceFile, path: KeyPath, message: str) -> None:
        self.errors.append(src.issue(path, message))

    def material(self, src: SourceFile, path: KeyPath, mid: str | None, use: Use, active: bool) -> None:
        """``mid`` exists, may go to ``use``, and (when ``active``) is approved and current."""
        if mid is None:
            return
        found = self.x.materials.get(mid)
        if found is None:
            if mid not in self.x.known_ids:
                self.error(src, path, f"unknown material {mid!r}{_did_you_mean(mid, self.x.materials)}")
            return
        m = found.value
        if m.type == "quick_reply":
            self.error(src, path, f"material {mid!r} is a quick reply for the manager's sidebar; steps cannot send it")
            return
        if use not in m.channels:
            self.error(src, path, f"material {mid!r} is for {', '.join(m.channels)}, not {use} (see its channels:)")
        if active:
            # A compliance date is not a syntax error: it skips the steps that use the material
            # (see check_compliance), and must never stop the service from starting.
            self.uses.setdefault(mid, []).append(f"{src.display}:{src.line_of(path)} {format_key_path(path)}")

    def tag(self, src: SourceFile, path: KeyPath, tag: str, *, settable: bool = False) -> None:
        """``tag`` is declared; ``settable`` tags must be manager-owned (CRM sync would undo them)."""
        if not self.x.tags_ok:
            return
        owner = self.tag_owner.get(tag)
        if owner is None:
            hint = _did_you_mean(tag, self.tag_owner)
            self.error(src, path, f"unknown tag {tag!r}: declare it in sop/tags.yaml{hint}")
        elif settable and owner == "crm":
            self.error(src, path, f"tag {tag!r} is owned by CRM sync, which would remove it; use a manager tag")

    def tag_filter(self, src: SourceFile, path: KeyPath, filt: TagFilter | None) -> None:
        if filt is not None:
            for fld, i, tag in filt.refs():
                self.tag(src, (*path, fld, i), tag)

    def template(self, src: SourceFile, path: KeyPath, text: str, uses: list[Use]) -> None:
        """Template problems, each on the line of the offending placeholder when we can tell."""
        for problem in check_template(text, uses):
            line = src.text_line(path, problem.offset, text)
            self.errors.append(PlaybookIssue(src.display, line, format_key_path(path), str(problem)))

    def quiet(self, src: SourceFile, path: KeyPath, at: time | None) -> None:
        policy = self.x.policy
        if at is not None and policy is not None and policy.value.quiet_hours.contains(at):
            self.error(src, path, f"{at:%H:%M} is inside quiet hours {policy.value.quiet_hours} (sop/policy.yaml)")

    # --- files ---

    def check_materials(self) -> None:
        policy = self.x.policy.value if self.x.policy else None
        for loc in self.x.materials.values():
            m, src = loc.value, loc.source
            for sub, text in template_fields(m):
                self.template(src, (*loc.path, *sub), text, m.channels)
            if m.risk_disclosure and policy is not None and not policy.risk_disclosure:
                self.error(src, (*loc.path, "risk_disclosure"), "policy.yaml has no risk_disclosure text to append")
            for i, tag in enumerate(m.interest_tags):
                self.tag(src, (*loc.path, "interest_tags", i), tag, settable=True)
            self.tag_filter(src, (*loc.path, "for_tags"), m.for_tags)
            for block in ("image", "file"):
                media = getattr(m, block)
                if media is not None and media.path and not (self.materials_dir / media.path).is_file():
                    self.error(src, (*loc.path, block, "path"), f"no file {media.path!r} under materials/")
            cover = m.miniprogram.cover if m.miniprogram is not None else ""
            # A cover that is not a URL is a file under materials/, uploaded when sent.
            if cover and not cover.startswith(("http://", "https://")) and not (self.materials_dir / cover).is_file():
                self.error(src, (*loc.path, "miniprogram", "cover"), f"no file {cover!r} under materials/")

    def check_surveys(self) -> None:
        """A survey's category tags are declared manager tags; a material's survey exists."""
        for found in self.x.surveys.values():
            problem = found.value.alert_problem()
            if problem is not None:
                self.error(found.source, (*found.path, "alert", "max_score"), problem)
            for category, tag in found.value.tags.named():
                self.tag(found.source, (*found.path, "tags", category), tag, settable=True)
        for loc in self.x.materials.values():
            sid = loc.value.survey
            if sid is not None and sid not in self.x.surveys and sid not in self.x.known_surveys:
                hint = _did_you_mean(sid, {*self.x.surveys, *self.x.known_surveys})
                self.error(loc.source, (*loc.path, "survey"),
                           f"unknown survey {sid!r}: declare it in sop/feedback.yaml{hint}")

    def check_compliance(self) -> None:
        """Warn at each material that is, or within EXPIRY_WARNING_DAYS will be, unsendable,
        listing the active steps it skips (an expired welcome falls back to the default one)."""
        for mid, loc in self.x.materials.items():
            if mid in self.content_flagged:
                continue
            m, uses = loc.value, self.uses.get(mid, [])
            problem = m.compliance_problem(self.today)
            key = "valid_until" if m.valid_until is not None and m.valid_until < self.today else "approved"
            notice = m.expiry_notice(self.today, EXPIRY_WARNING_DAYS)
            if problem is not None and uses:
                self.warn(loc, key, f"{problem}; skipped until fixed: {'; '.join(uses)}")
            elif notice is not None:
                then = f"; then skipped: {'; '.join(uses)}" if uses else ""
                self.warn(loc, "valid_until", notice + then)

    def warn(self, loc: Located[Material], key: str, message: str) -> None:
        self.warnings.append(loc.source.issue((*loc.path, key), message, severity="warning"))

    def check_policy(self) -> None:
        if self.x.policy is not None:
            loc = self.x.policy
            self.tag(loc.source, ("opt_out_tag",), loc.value.opt_out_tag, settable=True)
            if loc.value.ops_contacts:
                self.quiet(loc.source, ("ops_notice_at",), loc.value.ops_notice_at)

    def check_channels(self) -> None:
        dw = self.x.default_welcome
        if dw is not None:
            self.material(dw.source, dw.path, dw.value, "private", active=True)
        for loc in self.x.channels.values():
            ch, src = loc.value, loc.source
            self.material(src, (*loc.path, "welcome"), ch.welcome, "private", ch.active)
            for i, tag in enumerate(ch.tags):
                self.tag(src, (*loc.path, "tags", i), tag, settable=True)

    def check_group_types(self) -> None:
        for loc in self.x.group_types.values():
            self.material(loc.source, (*loc.path, "welcome"), loc.value.welcome, "group", active=True)

    def check_calendar(self, loc: Located[GroupCalendar]) -> None:
        cal, src = loc.value, loc.source
        gt_loc = self.x.group_types.get(cal.group_type)
        if gt_loc is None and cal.group_type not in self.x.known_group_types:
            hint = _did_you_mean(cal.group_type, self.x.group_types)
            self.error(src, ("group_type",), f"unknown group type {cal.group_type!r} (sop/groups.yaml){hint}")
        gt = gt_loc.value if gt_loc else None
        entries: list[tuple[KeyPath, CalendarStep | RecurringRule]] = [
            *((("steps", i), s) for i, s in enumerate(cal.steps)),
            *((("recurring", i), r) for i, r in enumerate(cal.recurring)),
        ]
        for path, entry in entries:
            active = cal.active and entry.active
            # Posting in the chat is a group message; to: members goes 1:1 from the owner.
            use: Use = "private" if entry.to == "members" else "group"
            self.material(src, (*path, "send"), entry.send, use, active)
            self.material(src, (*path, "task"), entry.task, "manager", active)
            self.tag_filter(src, (*path, "tags"), entry.tags)
            if isinstance(entry, RecurringRule) and entry.cron:
                self.quiet(src, (*path, "cron"), entry.send_time)
            else:
                self.quiet(src, (*path, "at"), entry.at)
        for i, rule in enumerate(cal.recurring):
            expr = rule.date_expr
            if expr is not None and expr.anchor == "payday" and gt is not None and gt.payday is None:
                self.error(src, ("recurring", i, "on"), f"group type {cal.group_type!r} has no payday: default")
        if gt is not None and gt.lifetime_days is not None:
            for i, step in enumerate(cal.steps):
                if step.day > gt.lifetime_days:
                    self.warnings.append(
                        src.issue(
                            ("steps", i, "day"),
                            f"day {step.day} is after the group's lifetime ({gt.lifetime_days} days)",
                            severity="warning",
                        )
                    )

    def check_path(self, loc: Located[PathSop]) -> None:
        sop, src = loc.value, loc.source
        self.tag_filter(src, ("when",), sop.when)
        if sop.when.condition is not None:
            for tag in sorted(sop.when.condition.tags):
                self.tag(src, ("when", "if"), tag)
        for i, step in enumerate(sop.steps):
            path: KeyPath = ("steps", i)
            active = sop.active and step.active
            self.quiet(src, (*path, "at"), step.at)
            targets: list[tuple[KeyPath, object]] = [(path, step)]
            targets += [((*path, "branches", j), b) for j, b in enumerate(step.branches)]
            for bpath, actions in targets:
                self.material(src, (*bpath, "send"), getattr(actions, "send", None), "private", active)
                self.material(src, (*bpath, "task"), getattr(actions, "task", None), "manager", active)
                self.material(src, (*bpath, "script"), getattr(actions, "script", None), "private", active)
                for fld in ("tag", "untag"):
                    for k, tag in enumerate(getattr(actions, fld, [])):
                        self.tag(src, (*bpath, fld, k), tag, settable=True)
                cond = getattr(actions, "when", None)
                for tag in sorted(cond.tags) if cond is not None else []:
                    self.tag(src, (*bpath, "if"), tag)

    def check_reminder(self, loc: Located[Reminder]) -> None:
        rem, src = loc.value, loc.source
        self.material(src, (*loc.path, "script"), rem.script, "private", rem.active)
        self.quiet(src, (*loc.path, "at"), rem.at)
        self.template(src, (*loc.path, "card"), rem.card, ["manager"])
        if rem.escalate_after is not None and rem.escalate_after < timedelta(hours=1):
            self.error(src, (*loc.path, "escalate_after"), "escalate_after under 1h leaves managers no time")
