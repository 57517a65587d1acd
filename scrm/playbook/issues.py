"""Problems found in a playbook, each pinned to ``file:line: key.path``.

Ops admins fix YAML in an editor, so every message must say where to look. Issues are
collected, never raised one by one: a reload that stops at the first typo makes people
play whack-a-mole with CI.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

KeyPart = str | int
KeyPath = tuple[KeyPart, ...]


def format_key_path(path: Sequence[KeyPart]) -> str:
    """``("steps", 2, "send")`` → ``steps[2].send``; list indices read as in most editors."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


@dataclass(frozen=True)
class PlaybookIssue:
    """One error or warning in one file.

    ``line`` is 1-based and ``None`` when the problem is the file itself (missing, unreadable);
    ``key_path`` is empty for problems that belong to no key (YAML syntax errors).
    """

    file: str
    line: int | None
    key_path: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.key_path:
            return f"{where}: {self.key_path}: {self.message}"
        return f"{where}: {self.message}"


class PlaybookError(Exception):
    """The playbook is invalid; ``errors`` lists every problem found, in file order.

    ``warnings`` carries what a successful load would have put on ``Playbook.warnings``, so
    ``scrm sop validate`` can show both in one run.
    """

    def __init__(self, errors: Iterable[PlaybookIssue], *, warnings: Iterable[PlaybookIssue] = ()) -> None:
        self.errors: list[PlaybookIssue] = sorted(errors, key=_sort_key)
        self.warnings: list[PlaybookIssue] = sorted(warnings, key=_sort_key)
        super().__init__("\n".join(str(e) for e in self.errors) or "invalid playbook")


def _sort_key(issue: PlaybookIssue) -> tuple[str, int, str, str]:
    return (issue.file, issue.line or 0, issue.key_path, issue.message)


def sort_issues(issues: Iterable[PlaybookIssue]) -> list[PlaybookIssue]:
    """File, then line order: how an admin walks through them in an editor."""
    return sorted(issues, key=_sort_key)
