"""The succession rules ops admins own (``sop/succession.yaml``): who takes over whom.

::

    message: "您好，{old_manager}的工作已由我接替，我是{new_manager}，之后由我为您服务。"
    rules:                        # first match wins
      - name: lina-to-zhangwei
        handover: [lina]          # whose customers (absent: anyone's)
        to: zhangwei              # a named successor …
      - name: same-team
        department: 杭州分行        # … for members under this department path (absent: any)
        pick: same_team           # … or the least loaded active member of the same team
      - name: branch
        pick: least_loaded        # … or of a department (``among``; absent: the whole bank)
        among: 杭州分行/城西支行
    ops_queue: [zhaomin]          # last resort: the least loaded of these

Read with the playbook's YAML reader (YAML 1.2, every key's line), so every problem is one
``file:line: key.path: message`` like the rest of ``sop/``. A missing file means the default:
the same team, least loaded. Pure: which members exist is the caller's business.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scrm.playbook.issues import PlaybookError, PlaybookIssue
from scrm.playbook.yamlsrc import SourceFile, read_yaml

FILE_NAME = "succession.yaml"
PICKS = ("same_team", "least_loaded")
MAX_MESSAGE = 200  # transfer_success_msg, WeCom's limit
DEFAULT_MESSAGE = "您好，您的客户经理已由{old_manager}调整为{new_manager}，之后由{new_manager}为您服务。"
_TOP_KEYS = ("message", "rules", "ops_queue")
_RULE_KEYS = ("name", "handover", "department", "to", "pick", "among")


@dataclass(frozen=True)
class Rule:
    """One rule: whom it applies to (``handover``, ``department``) and how it chooses."""

    name: str
    handover: frozenset[str] = frozenset()
    department: str = ""
    to: str = ""
    pick: str = ""
    among: str = ""

    def applies(self, userid: str, department: str) -> bool:
        if self.handover and userid not in self.handover:
            return False
        return not self.department or under(department, self.department)


@dataclass(frozen=True)
class Rules:
    """The whole file; ``source`` names it for messages."""

    rules: tuple[Rule, ...] = (Rule(name="default: same_team", pick="same_team"),)
    ops_queue: tuple[str, ...] = ()
    message: str = DEFAULT_MESSAGE
    source: str = "(default rules)"

    def handover_message(self, old_manager: str, new_manager: str) -> str:
        """The transfer_success_msg the customer reads (in-office moves), ≤200 characters."""
        text = self.message.replace("{old_manager}", old_manager).replace("{new_manager}", new_manager)
        return text[:MAX_MESSAGE]


def under(path: str, prefix: str) -> bool:
    """``path`` is ``prefix`` or a department below it (whole path segments)."""
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def load_rules(sop_dir: Path) -> Rules:
    """The rules of ``sop_dir/succession.yaml`` (defaults when absent); raises
    :class:`PlaybookError` listing every problem."""
    path = sop_dir / FILE_NAME
    if not path.exists():
        return Rules()
    source, issues = read_yaml(path, f"{sop_dir.name}/{FILE_NAME}")
    if source is None or issues:
        raise PlaybookError(issues)
    rules, problems = _parse(source)
    if problems:
        raise PlaybookError(problems)
    return rules


def _parse(src: SourceFile) -> tuple[Rules, list[PlaybookIssue]]:
    data = src.data if src.data is not None else {}
    problems: list[PlaybookIssue] = []
    if not isinstance(data, dict):
        return Rules(), [src.issue((), "must be a mapping with message, rules, ops_queue")]
    problems += [src.issue((k,), f"unknown key; expected one of {', '.join(_TOP_KEYS)}")
                 for k in data if k not in _TOP_KEYS]
    message = data.get("message", DEFAULT_MESSAGE)
    if not isinstance(message, str) or not message.strip():
        problems.append(src.issue(("message",), "must be a non-empty text"))
        message = DEFAULT_MESSAGE
    elif len(message) > MAX_MESSAGE:
        problems.append(src.issue(("message",), f"at most {MAX_MESSAGE} characters (WeCom's limit), "
                                                f"got {len(message)}"))
    queue = _userids(src, data, ("ops_queue",), problems)
    raw = data.get("rules", [])
    if not isinstance(raw, list):
        problems.append(src.issue(("rules",), "must be a list of rules"))
        raw = []
    rules = tuple(r for i, item in enumerate(raw) if (r := _rule(src, i, item, problems)) is not None)
    if not rules and not queue:
        problems.append(src.issue(("rules",), "no rule and no ops_queue: nobody could take a customer over"))
    return Rules(rules=rules, ops_queue=tuple(queue), message=message, source=src.display), problems


def _rule(src: SourceFile, i: int, item: Any, problems: list[PlaybookIssue]) -> Rule | None:
    at = ("rules", i)
    if not isinstance(item, dict):
        problems.append(src.issue(at, "must be a mapping (name, handover, department, to | pick, among)"))
        return None
    before = len(problems)
    problems += [src.issue((*at, k), f"unknown key; expected one of {', '.join(_RULE_KEYS)}")
                 for k in item if k not in _RULE_KEYS]
    texts = {k: _text(src, item, (*at, k), problems) for k in ("name", "department", "to", "pick", "among")}
    handover = _userids(src, item, (*at, "handover"), problems)
    if bool(texts["to"]) == bool(texts["pick"]):
        problems.append(src.issue(at, "give exactly one of `to` (a successor's userid) or `pick` "
                                      f"({' | '.join(PICKS)})"))
    elif texts["pick"] and texts["pick"] not in PICKS:
        problems.append(src.issue((*at, "pick"), f"unknown {texts['pick']!r}; expected {' | '.join(PICKS)}"))
    if texts["among"] and texts["pick"] != "least_loaded":
        problems.append(src.issue((*at, "among"), "only with pick: least_loaded"))
    if len(problems) > before:
        return None
    return Rule(name=texts["name"] or f"rules[{i}]", handover=frozenset(handover), department=texts["department"],
                to=texts["to"], pick=texts["pick"], among=texts["among"])


def _text(src: SourceFile, data: Mapping[str, Any], at: tuple[Any, ...], problems: list[PlaybookIssue]) -> str:
    value = data.get(at[-1])
    if value is None:
        return ""
    if not isinstance(value, str) or not value.strip():
        problems.append(src.issue(at, "must be a non-empty text"))
        return ""
    return value.strip()


def _userids(src: SourceFile, data: Mapping[str, Any], at: tuple[Any, ...], problems: list[PlaybookIssue],
             ) -> list[str]:
    value = data.get(at[-1])
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        problems.append(src.issue(at, "must be a userid or a list of userids"))
        return []
    return [v.strip() for v in value]


@dataclass
class Candidate:
    """An active member who may take customers over, and how many they look after."""

    userid: str
    department: str
    load: int


@dataclass
class Chooser:
    """Applies the rules to one handover after another, counting what it assigns as load, so
    5,000 customers of one resigned member spread over a team instead of landing on one."""

    rules: Rules
    members: Mapping[str, Candidate]  # active members by userid
    assigned: dict[str, int] = field(default_factory=dict)

    def choose(self, handover: str, handover_department: str) -> tuple[str, str] | None:
        """(takeover userid, rule name) for one customer of ``handover``, or None."""
        for rule in self.rules.rules:
            if not rule.applies(handover, handover_department):
                continue
            if rule.to:
                if rule.to in self.members and rule.to != handover:
                    return self._take(rule.to, rule.name)
                continue  # a successor who left (or the handover): the next rule decides
            if rule.pick == "same_team":
                pool = [c for c in self.members.values() if c.department and c.department == handover_department]
            else:
                pool = [c for c in self.members.values() if not rule.among or under(c.department, rule.among)]
            found = self._least_loaded(pool, handover)
            if found is not None:
                return self._take(found, rule.name)
        queue = [self.members[u] for u in self.rules.ops_queue if u in self.members]
        found = self._least_loaded(queue, handover)
        return self._take(found, "ops_queue") if found is not None else None

    def _least_loaded(self, pool: Sequence[Candidate], handover: str) -> str | None:
        pool = [c for c in pool if c.userid != handover]
        if not pool:
            return None
        return min(pool, key=lambda c: (c.load + self.assigned.get(c.userid, 0), c.userid)).userid

    def _take(self, userid: str, rule: str) -> tuple[str, str]:
        self.assigned[userid] = self.assigned.get(userid, 0) + 1
        return userid, rule
