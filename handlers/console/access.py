"""Who may use the console, as what, over which part of the bank: ``sop/console.yaml``.

    # Roles: ops_admin (the whole bank; runs the service), auditor (reads everything, the audit
    # log included; changes nothing), branch_head and team_lead (their department and below),
    # compliance_officer (the whole bank; reads and triages conversation-review cases).
    members:
      zhouhai: {role: ops_admin}
      audit01: {role: auditor}
      mali: {role: branch_head, scope: 杭州分行/城西支行}
      wangqiang: {role: team_lead, scope: 杭州分行/城西支行/代发服务团队}

A member is named by WeCom userid; ``scope`` is a department path of the staff directory
(``分行/支行/团队``, as ``scrm staff list`` shows it) and is required for the two scoped roles.
A member not in the file cannot sign in. Every problem is reported as ``file:line: key: message``,
and a file with any problem grants nothing (the console then admits only the local admin).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from scrm.playbook.issues import KeyPath, PlaybookIssue, format_key_path
from scrm.playbook.yamlsrc import SourceFile, read_yaml


class Role(StrEnum):
    OPS_ADMIN = "ops_admin"
    AUDITOR = "auditor"
    BRANCH_HEAD = "branch_head"
    TEAM_LEAD = "team_lead"
    COMPLIANCE_OFFICER = "compliance_officer"


SCOPED = frozenset({Role.BRANCH_HEAD, Role.TEAM_LEAD})
ROLE_LABELS = {Role.OPS_ADMIN: "运营管理员", Role.AUDITOR: "审计员", Role.BRANCH_HEAD: "支行/分行负责人",
               Role.TEAM_LEAD: "团队长", Role.COMPLIANCE_OFFICER: "合规专员"}
LOCAL_ADMIN = "local:admin"


@dataclass(frozen=True)
class Grant:
    """What one person may see and do."""

    userid: str
    role: Role
    scope: str = ""  # a department path; "" = the whole bank

    @property
    def whole_bank(self) -> bool:
        return self.role not in SCOPED

    @property
    def may_operate(self) -> bool:
        """Replay, resolve, cancel: only ops admins change anything."""
        return self.role is Role.OPS_ADMIN

    @property
    def sees_operations(self) -> bool:
        return self.role in (Role.OPS_ADMIN, Role.AUDITOR)

    @property
    def sees_audit(self) -> bool:
        return self.role in (Role.OPS_ADMIN, Role.AUDITOR)

    @property
    def sees_archive(self) -> bool:
        """Archived conversations (会话存档) and their review cases: compliance officers, and
        auditors read-only (they check the triage). Ops admins and managers never."""
        return self.role in (Role.COMPLIANCE_OFFICER, Role.AUDITOR)

    @property
    def may_triage(self) -> bool:
        """Dismiss or escalate a review case."""
        return self.role is Role.COMPLIANCE_OFFICER

    def covers(self, department: str) -> bool:
        """Is a member of ``department`` (a path) inside this grant's scope?"""
        if self.whole_bank:
            return True
        return department == self.scope or department.startswith(self.scope + "/")


@dataclass
class AccessList:
    """The grants of the access file, or why there are none."""

    grants: dict[str, Grant] = field(default_factory=dict)
    errors: list[PlaybookIssue] = field(default_factory=list)

    def grant_of(self, userid: str) -> Grant | None:
        return None if self.errors else self.grants.get(userid)


def load_access(path: Path, display: str | None = None) -> AccessList:
    """Read and check the access file; a missing file grants nothing (not an error: a bank may
    start with the local admin alone)."""
    display = display or str(path)
    if not path.exists():
        return AccessList()
    source, issues = read_yaml(path, display)
    if source is None or issues:
        return AccessList(errors=list(issues))
    out = AccessList()
    _check(source, out)
    return out


def _check(source: SourceFile, out: AccessList) -> None:
    def err(path: KeyPath, message: str) -> None:
        out.errors.append(PlaybookIssue(source.display, source.line_of(path), format_key_path(path), message))

    data = source.data
    if data is None:
        return
    if not isinstance(data, Mapping) or set(data) - {"members"}:
        err((), "expected a mapping with one key, members")
        return
    members = data.get("members") or {}
    if not isinstance(members, Mapping):
        err(("members",), "expected a mapping of WeCom userid → {role, scope}")
        return
    for userid, spec in members.items():
        path: KeyPath = ("members", str(userid))
        grant = _grant(str(userid), spec, path, err)
        if grant is not None:
            out.grants[grant.userid] = grant
    if out.errors:
        out.grants.clear()


def _grant(userid: str, spec: Any, path: KeyPath, err: Any) -> Grant | None:
    if not userid or len(userid) > 64:
        err(path, "a WeCom userid of 1 to 64 characters")
        return None
    if not isinstance(spec, Mapping):
        err(path, "expected {role: ..., scope: ...}")
        return None
    unknown = set(spec) - {"role", "scope"}
    if unknown:
        err((*path, sorted(map(str, unknown))[0]), "unknown key (expected role, scope)")
        return None
    try:
        role = Role(str(spec.get("role", "")))
    except ValueError:
        err((*path, "role"), f"unknown role {spec.get('role')!r} (one of {', '.join(r.value for r in Role)})")
        return None
    scope = spec.get("scope")
    if role in SCOPED:
        if not isinstance(scope, str) or not scope.strip("/ "):
            err((*path, "scope"), f"{role.value} needs a scope: a department path such as 分行/支行/团队")
            return None
        return Grant(userid, role, scope.strip("/ "))
    if scope is not None:
        err((*path, "scope"), f"{role.value} sees the whole bank; remove scope")
        return None
    return Grant(userid, role)
