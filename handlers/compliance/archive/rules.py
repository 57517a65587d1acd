"""Review rules for archived conversations: ``sop/compliance/review.yaml``, owned by compliance.

    officers: [wangli]                 # WeCom userids alerted of every new case
    rules:
      - id: promise-returns            # a case names the rule it hit
        title: 承诺保本或收益
        words: [保本, 稳赚]              # plain substrings (spaces inside the message are ignored)
        patterns: ['年化.{0,8}保证']      # Python regular expressions
        urgent: false                  # true: alert at once, even in quiet hours

Every problem is an error at ``file:line: key.path: message``, and a file with any error reviews
nothing: the intake stops (its cursor unmoved) until the file is fixed, so no message is stored
unreviewed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scrm.playbook.issues import KeyPath, PlaybookIssue
from scrm.playbook.yamlsrc import SourceFile, read_yaml

REVIEW_FILE = Path("compliance") / "review.yaml"  # under [playbook] sop_dir
ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
RULE_KEYS = frozenset({"id", "title", "words", "patterns", "urgent"})
_SPACE = re.compile(r"\s+")


class ReviewRulesError(Exception):
    """The review file has errors (each ``file:line: key: message``)."""

    def __init__(self, issues: list[PlaybookIssue]) -> None:
        self.issues = issues
        super().__init__("; ".join(map(str, issues)))


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    words: tuple[str, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()
    urgent: bool = False

    def match(self, text: str) -> str | None:
        """What in ``text`` hit this rule (the word or the matched span), or None."""
        squeezed = _SPACE.sub("", text)
        for word in self.words:
            if word in text or word in squeezed:
                return word
        for pattern in self.patterns:
            found = pattern.search(text) or pattern.search(squeezed)
            if found:
                return found.group(0)
        return None


@dataclass(frozen=True)
class ReviewRules:
    rules: tuple[Rule, ...]
    officers: tuple[str, ...]

    def hits(self, text: str) -> list[tuple[Rule, str]]:
        """Every rule ``text`` hits, in the file's order, with what matched."""
        if not text:
            return []
        return [(rule, m) for rule in self.rules if (m := rule.match(text)) is not None]

    def by_id(self) -> dict[str, Rule]:
        return {r.id: r for r in self.rules}


def load_review_rules(path: Path, display: str | None = None) -> ReviewRules:
    """Read and check the review file; raises :class:`ReviewRulesError` (a missing file too:
    reviewing with no rules would store messages unreviewed)."""
    display = display or str(path)
    if not path.exists():
        raise ReviewRulesError([PlaybookIssue(display, None, "", "missing: conversation review needs its rules")])
    source, issues = read_yaml(path, display)
    if source is None or issues:
        raise ReviewRulesError(list(issues))
    errors: list[PlaybookIssue] = []
    rules = _check(source, errors)
    if errors or rules is None:
        raise ReviewRulesError(errors)
    return rules


def _check(source: SourceFile, errors: list[PlaybookIssue]) -> ReviewRules | None:
    def err(path: KeyPath, message: str) -> None:
        errors.append(source.issue(path, message))

    data = source.data
    if not isinstance(data, Mapping) or set(data) - {"officers", "rules"}:
        err((), "expected a mapping with the keys officers and rules")
        return None
    officers = data.get("officers")
    if not isinstance(officers, list) or not officers or not all(isinstance(o, str) and o for o in officers):
        err(("officers",), "expected a list of WeCom userids (at least one) to alert of new cases")
        officers = []
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        err(("rules",), "expected a list of rules (at least one)")
        return None
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, spec in enumerate(raw_rules):
        rule = _rule(spec, ("rules", index), err)
        if rule is None:
            continue
        if rule.id in seen:
            err(("rules", index, "id"), f"rule id {rule.id!r} is used twice")
            continue
        seen.add(rule.id)
        rules.append(rule)
    return ReviewRules(tuple(rules), tuple(officers))


def _strings(spec: Mapping[str, Any], key: str, path: KeyPath, err: Any) -> list[str] | None:
    value = spec.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        err((*path, key), "expected a list of non-empty strings")
        return None
    return [v.strip() for v in value]


def _rule(spec: Any, path: KeyPath, err: Any) -> Rule | None:
    if not isinstance(spec, Mapping):
        err(path, "expected {id, title, words, patterns, urgent}")
        return None
    unknown = sorted(map(str, set(spec) - RULE_KEYS))
    if unknown:
        err((*path, unknown[0]), f"unknown key (expected {', '.join(sorted(RULE_KEYS))})")
        return None
    rule_id, title = spec.get("id"), spec.get("title")
    if not isinstance(rule_id, str) or not ID.match(rule_id):
        err((*path, "id"), "an id of lowercase letters, digits and '-' (up to 64)")
        return None
    if not isinstance(title, str) or not title.strip():
        err((*path, "title"), "a title the compliance officers read")
        return None
    words, texts = _strings(spec, "words", path, err), _strings(spec, "patterns", path, err)
    if words is None or texts is None:
        return None
    patterns = []
    for index, text in enumerate(texts):
        try:
            patterns.append(re.compile(text))
        except re.error as exc:
            err((*path, "patterns", index), f"not a regular expression: {exc}")
            return None
    if not words and not patterns:
        err(path, "a rule needs words or patterns")
        return None
    urgent = spec.get("urgent", False)
    if not isinstance(urgent, bool):
        err((*path, "urgent"), "true or false")
        return None
    return Rule(rule_id, title.strip(), tuple(words), tuple(patterns), urgent)
