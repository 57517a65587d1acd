"""Load sop/ and materials/ into a :class:`Playbook`, or report every problem at once.

Layout (all YAML 1.2, UTF-8)::

    sop/policy.yaml          contact policy (required)
    sop/holidays.yaml        public holidays and make-up workdays (name set in policy)
    sop/tags.yaml            tag groups and the CRM → tag map
    sop/channels.yaml        contact QR channels (their key is WeCom's state)
    sop/groups.yaml          customer group types
    sop/reminders.yaml       key-event reminders to managers
    sop/calendars/*.yaml     one group calendar per file
    sop/paths/*.yaml         one 1:1 path SOP per file
    materials/**/*.yaml      lists of materials

Validation runs file by file, then across files; nothing stops at the first error. The
service keeps its last good playbook when this raises.
"""

from __future__ import annotations

import contextlib
import os
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from .claims import CLAIMS_FILE, ClaimsFile
from .contentrules import ContentCheck
from .flows import GroupCalendar, PathSop, Reminder, RemindersFile
from .holidays import WorkCalendar, load_holidays
from .issues import PlaybookError, PlaybookIssue, sort_issues
from .models import Channel, ChannelsFile, GroupsFile, GroupType, Material, Policy, TagGroup, TagsFile
from .playbook import Playbook
from .references import Checker, Loaded, Located
from .suitability import DEFAULT_RULES, SuitabilityRules, category_issues, unchecked_issues, unchecked_uses
from .surveys import FEEDBACK_FILE, FeedbackFile, Survey
from .validate import validation_issues
from .yamlsrc import SourceFile, read_yaml

M = TypeVar("M", bound=BaseModel)

KNOWN_FILES = ("policy.yaml", "tags.yaml", "channels.yaml", "groups.yaml", "reminders.yaml", FEEDBACK_FILE)
KNOWN_DIRS = ("calendars", "paths")
# Files in sop/ that features read and check themselves (`scrm console check`, `scrm succession
# check`): part of the layout, so not "ignored", but not the SOP engine's to load.
FEATURE_FILES = ("console.yaml", "succession.yaml", "segments.yaml", "lifecycle.yaml", "membership.yaml",
                 "referral.yaml")
# Folders of sop/ whose YAML the campaigns feature reads and checks (`scrm campaign validate`).
FEATURE_DIRS = ("campaigns", "experiments")
# sop/compliance/: the compliance team's YAML (suitability.yaml is read here, the playbook's
# suitability rules; the other files belong to the compliance feature, which checks them).
COMPLIANCE_DIR = "compliance"


class _Loader:
    def __init__(self, sop_dir: Path, materials_dir: Path) -> None:
        self.sop_dir = sop_dir
        self.materials_dir = materials_dir
        try:
            self.base: Path | None = Path(os.path.commonpath([sop_dir.resolve(), materials_dir.resolve()]))
        except ValueError:  # different drives: show paths as given
            self.base = None
        self.errors: list[PlaybookIssue] = []
        self.warnings: list[PlaybookIssue] = []
        self.x = Loaded()
        self.origins: dict[str, str] = {}

    def display(self, path: Path) -> str:
        if self.base is not None:
            try:
                return path.resolve().relative_to(self.base).as_posix()
            except ValueError:
                pass
        return str(path)

    def read(self, path: Path, *, required: bool) -> SourceFile | None:
        if not path.is_file():
            if required:
                self.errors.append(PlaybookIssue(self.display(path), None, "", "file not found"))
            return None
        source, issues = read_yaml(path, self.display(path))
        self.errors.extend(issues)
        return source

    def validate(self, source: SourceFile, model: type[M]) -> M | None:
        if source.data is None:
            self.errors.append(source.issue((), "file is empty"))
            return None
        try:
            return model.model_validate(source.data)
        except ValidationError as exc:
            self.errors.extend(validation_issues(source, exc, model=model))
            return None

    def salvage(self, source: SourceFile, section: str, model: type[M]) -> dict[str, Located[M]]:
        """Valid entries of a mapping section whose file failed validation (limits cascades)."""
        out: dict[str, Located[M]] = {}
        entries = source.data.get(section) if isinstance(source.data, dict) else None
        for key, value in entries.items() if isinstance(entries, dict) else ():
            with contextlib.suppress(ValidationError):  # its errors are already reported
                out[str(key)] = Located(model.model_validate(value), source, (section, str(key)))
        return out

    # --- files ---

    def load_policy(self) -> Policy | None:
        source = self.read(self.sop_dir / "policy.yaml", required=True)
        policy = self.validate(source, Policy) if source else None
        if source is not None and policy is not None:
            self.x.policy = Located(policy, source, ())
        return policy

    def load_tags(self) -> None:
        source = self.read(self.sop_dir / "tags.yaml", required=False)
        if source is None:
            return
        spec = self.validate(source, TagsFile)
        if spec is not None:
            self.x.tag_groups = dict(spec.groups)
        else:
            self.x.tags_ok = False
            self.x.tag_groups = {k: v.value for k, v in self.salvage(source, "groups", TagGroup).items()}

    def load_materials(self) -> None:
        files = sorted(self.materials_dir.rglob("*.yaml")) if self.materials_dir.is_dir() else []
        if not self.materials_dir.is_dir():
            self.errors.append(PlaybookIssue(self.display(self.materials_dir), None, "", "materials folder not found"))
        for path in files:
            source = self.read(path, required=True)
            if source is None or source.data is None:
                continue
            if not isinstance(source.data, list):
                self.errors.append(source.issue((), "a materials file is a list of materials (- id: ...)"))
                continue
            for i, item in enumerate(source.data):
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    self.x.known_ids.add(item["id"])
                try:
                    material = Material.model_validate(item)
                except ValidationError as exc:
                    self.errors.extend(validation_issues(source, exc, base=(i,), model=Material))
                    continue
                first = self.x.materials.get(material.id)
                if first is not None:
                    where = f"{first.source.display}:{first.source.line_of(first.path)}"
                    self.errors.append(source.issue((i, "id"), f"duplicate material id {material.id!r} (also {where})"))
                    continue
                self.x.materials[material.id] = Located(material, source, (i,))
                self.origins[f"material:{material.id}"] = source.display

    def load_channels(self) -> None:
        source = self.read(self.sop_dir / "channels.yaml", required=False)
        if source is None:
            return
        spec = self.validate(source, ChannelsFile)
        if spec is None:
            self.x.channels = self.salvage(source, "channels", Channel)
            return
        self.x.default_welcome = Located(spec.default_welcome, source, ("default_welcome",))
        self.x.channels = {k: Located(v, source, ("channels", k)) for k, v in spec.channels.items()}

    def load_groups(self) -> None:
        source = self.read(self.sop_dir / "groups.yaml", required=False)
        if source is None:
            return
        if isinstance(source.data, dict) and isinstance(source.data.get("group_types"), dict):
            self.x.known_group_types = {str(k) for k in source.data["group_types"]}
        spec = self.validate(source, GroupsFile)
        if spec is None:
            self.x.group_types = self.salvage(source, "group_types", GroupType)
            return
        self.x.group_types = {k: Located(v, source, ("group_types", k)) for k, v in spec.group_types.items()}

    def load_reminders(self) -> None:
        source = self.read(self.sop_dir / "reminders.yaml", required=False)
        if source is None:
            return
        spec = self.validate(source, RemindersFile)
        if spec is None:
            self.x.reminders = self.salvage(source, "reminders", Reminder)
            return
        self.x.reminders = {k: Located(v, source, ("reminders", k)) for k, v in spec.reminders.items()}

    def load_surveys(self) -> None:
        """sop/feedback.yaml (the feedback surveys); none without it."""
        source = self.read(self.sop_dir / FEEDBACK_FILE, required=False)
        if source is None:
            return
        if isinstance(source.data, dict) and isinstance(source.data.get("surveys"), dict):
            self.x.known_surveys = {str(k) for k in source.data["surveys"]}
        spec = self.validate(source, FeedbackFile)
        if spec is None:
            self.x.surveys = self.salvage(source, "surveys", Survey)
            return
        self.x.surveys = {k: Located(v, source, ("surveys", k)) for k, v in spec.surveys.items()}

    def load_flows(self) -> None:
        kinds: tuple[tuple[str, type[GroupCalendar] | type[PathSop], str], ...] = (
            ("calendars", GroupCalendar, "calendar"),
            ("paths", PathSop, "path"),
        )
        for folder, model, id_key in kinds:
            seen: dict[str, SourceFile] = {}
            for path in sorted((self.sop_dir / folder).glob("*.yaml")):
                source = self.read(path, required=True)
                if source is None:
                    continue
                obj: Any = self.validate(source, model)
                if obj is None:
                    continue
                ident = getattr(obj, id_key)
                if ident in seen:
                    msg = f"duplicate {id_key} id {ident!r} (also in {seen[ident].display})"
                    self.errors.append(source.issue((id_key,), msg))
                    continue
                seen[ident] = source
                self.origins[f"{id_key}:{ident}"] = source.display
                if isinstance(obj, GroupCalendar):
                    self.x.calendars.append(Located(obj, source, ()))
                else:
                    self.x.paths.append(Located(obj, source, ()))

    def load_suitability(self) -> SuitabilityRules:
        """sop/compliance/suitability.yaml, or the defaults (no product material in groups)."""
        source = self.read(self.sop_dir / COMPLIANCE_DIR / "suitability.yaml", required=False)
        if source is None:
            return DEFAULT_RULES
        return self.validate(source, SuitabilityRules) or DEFAULT_RULES

    def load_claims(self) -> ClaimsFile | None:
        """sop/compliance/claims.yaml (banned claims, approvals bound to content); None without it.
        A broken file is an error of its own (reported by ``validate``); no rules apply meanwhile."""
        source = self.read(self.sop_dir / CLAIMS_FILE, required=False)
        return self.validate(source, ClaimsFile) if source is not None else None

    def unknown_files(self, holidays: str) -> None:
        """Warn about YAML the loader would silently ignore (a misspelt file name, .yml)."""
        known = {*KNOWN_FILES, *FEATURE_FILES, holidays}
        for path in sorted(self.sop_dir.rglob("*")):
            rel = path.relative_to(self.sop_dir).as_posix()
            if path.is_dir() or rel in known or rel.split("/")[0] == COMPLIANCE_DIR:
                continue
            parent = rel.split("/")[0]
            if parent in (*KNOWN_DIRS, *FEATURE_DIRS) and rel.count("/") == 1 and path.suffix == ".yaml":
                continue
            if path.suffix in (".yaml", ".yml"):
                self.warnings.append(
                    PlaybookIssue(self.display(path), None, "", "not part of the playbook layout; ignored", "warning")
                )


def _local_day(at: date, policy: Policy | None) -> date:
    """The playbook's own date for ``at``: an aware datetime is read in the policy's time zone."""
    if isinstance(at, datetime):
        return at.astimezone(ZoneInfo(policy.timezone if policy else "Asia/Shanghai")).date()
    return at


def load_playbook(sop_dir: Path, materials_dir: Path, *, today: date, withhold_content: bool = False) -> Playbook:
    """Load and check the whole playbook as of ``today``.

    ``today`` is the injected clock's time (an aware datetime, read in the policy's time zone)
    or a date: it decides which materials are expired or expiring. This module never reads the
    wall clock, so a restart on the day a material expires behaves exactly as a test says.
    Raises :class:`PlaybookError` listing every error; warnings are on the returned
    playbook's ``warnings`` (and on the error, if raised). An expired or unapproved material
    is a warning, not an error: the steps that use it are skipped, the service keeps running.

    A banned claim or an approval that does not match its content (sop/compliance/claims.yaml)
    is an error (``scrm sop validate``, CI); with ``withhold_content`` (the running service) it
    is a warning and only that material is refused at send time (:mod:`.contentrules`).
    """
    ld = _Loader(Path(sop_dir), Path(materials_dir))
    if not ld.sop_dir.is_dir():
        raise PlaybookError([PlaybookIssue(ld.display(ld.sop_dir), None, "", "sop folder not found")])
    policy = ld.load_policy()
    day = _local_day(today, policy)
    holidays_name = policy.holidays if policy else "holidays.yaml"
    work_calendar = WorkCalendar()
    holidays_src = ld.read(ld.sop_dir / holidays_name, required=True)
    if holidays_src is not None:
        work_calendar, issues = load_holidays(holidays_src, day)
        ld.errors.extend(i for i in issues if i.severity == "error")
        ld.warnings.extend(i for i in issues if i.severity == "warning")
    ld.load_tags()
    ld.load_materials()
    ld.load_channels()
    ld.load_groups()
    ld.load_reminders()
    ld.load_surveys()
    ld.load_flows()
    suitability = ld.load_suitability()
    ld.unknown_files(holidays_name)
    content = ContentCheck(ld.x.materials, ld.load_claims(), withhold_content)
    checker = Checker(ld.x, day, ld.materials_dir)
    checker.content_flagged = content.run()
    checker.run()
    content_errors, content_warnings = content.issues(checker.uses)
    checker.errors += content_errors
    checker.warnings += content_warnings
    materials = {k: v.value for k, v in ld.x.materials.items()}
    checker.errors += unchecked_issues(unchecked_uses(ld.x), materials, suitability)
    checker.errors += category_issues(((v.source, v.path, v.value) for v in ld.x.materials.values()), suitability)
    errors = ld.errors + checker.errors
    warnings = sort_issues(ld.warnings + checker.warnings)
    if errors or policy is None:
        raise PlaybookError(errors, warnings=warnings)
    x = ld.x
    return Playbook(
        policy=policy,
        work_calendar=work_calendar,
        materials={k: v.value for k, v in x.materials.items()},
        default_welcome=x.default_welcome.value if x.default_welcome else None,
        channels={k: v.value for k, v in x.channels.items()},
        group_types={k: v.value for k, v in x.group_types.items()},
        tag_groups=dict(x.tag_groups),
        calendars={c.value.calendar: c.value for c in x.calendars},
        paths={p.value.path: p.value for p in x.paths},
        reminders={k: v.value for k, v in x.reminders.items()},
        surveys={k: v.value for k, v in x.surveys.items()},
        warnings=tuple(warnings),
        origins=ld.origins,
        material_uses={k: tuple(v) for k, v in checker.uses.items()},
        suitability=suitability,
    )
