"""Read playbook YAML (1.2) into plain data plus a line for every key.

Why not ``yaml.load``: a loader stops at the first duplicate key and forgets where each key
was. We let ruamel parse and compose the node tree (YAML 1.2: ``12:30`` stays a string and
``on``/``NO`` are not booleans, unlike PyYAML), then build plain dicts and lists ourselves,
recording the 1-based line of every mapping key and sequence item, and reporting *every*
duplicate key with its full path. Scalars are converted by ruamel's safe constructor, so
``!!python/...`` and other unknown tags are refused, never executed. Anchors and aliases are
refused too: they make "which line is this" ambiguous and enable entity-expansion bombs.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .issues import KeyPath, PlaybookIssue, format_key_path

_NO_ALIASES = "anchors and aliases (&name / *name) are not supported; repeat the value"

_TIMESTAMP = "tag:yaml.org,2002:timestamp"

# A playbook file is a few KiB; refuse anything absurd before parsing it.
MAX_FILE_BYTES = 2 * 1024 * 1024


@dataclass
class SourceFile:
    """One parsed YAML file: its data and where each key sits.

    Key paths use ``str`` for mapping keys and ``int`` for list indices, so ``2026:`` in a
    mapping is ``"2026"`` here even though the data keeps the integer.
    """

    path: Path
    display: str
    data: Any
    key_lines: dict[KeyPath, int] = field(default_factory=dict)
    # For literal block scalars (``|``): the line their first content line is on, so a bad
    # placeholder deep inside a long text can be reported on its own line.
    literal_starts: dict[KeyPath, int] = field(default_factory=dict)

    def line_of(self, path: Sequence[Any]) -> int:
        """Line of ``path`` or of its nearest known ancestor (a missing key → its parent)."""
        parts = tuple(path)
        while parts:
            line = self.key_lines.get(parts)
            if line is not None:
                return line
            parts = parts[:-1]
        return self.key_lines.get((), 1)

    def text_line(self, path: KeyPath, offset: int, text: str) -> int:
        """Line of character ``offset`` inside the string at ``path``."""
        start = self.literal_starts.get(path)
        if start is None:  # plain or quoted scalars fold newlines: the key's line is the best
            return self.line_of(path)
        return start + text.count("\n", 0, offset)

    def issue(self, path: Sequence[Any], message: str, *, severity: str = "error") -> PlaybookIssue:
        """An issue at ``path`` in this file."""
        parts = tuple(path)
        return PlaybookIssue(
            self.display,
            self.line_of(parts),
            format_key_path(parts),
            message,
            "warning" if severity == "warning" else "error",
        )


def _yaml() -> YAML:
    y = YAML(typ="safe", pure=True)
    y.version = (1, 2)
    return y


class _Builder:
    """Turns a composed node tree into plain data, collecting issues instead of raising."""

    def __init__(self, source: SourceFile, yaml: YAML) -> None:
        self.source = source
        self.constructor = yaml.constructor
        self.issues: list[PlaybookIssue] = []
        self.seen: set[int] = set()

    def _issue(self, path: KeyPath, node: Node, message: str) -> None:
        line = node.start_mark.line + 1
        self.issues.append(PlaybookIssue(self.source.display, line, format_key_path(path), message))

    def build(self, node: Node, path: KeyPath) -> Any:
        if id(node) in self.seen:  # pragma: no cover - aliases are refused before composing
            self.issues.append(self.source.issue(path, _NO_ALIASES))
            return None
        self.seen.add(id(node))
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            out: list[Any] = []
            for i, item in enumerate(node.value):
                self.source.key_lines[(*path, i)] = item.start_mark.line + 1
                out.append(self.build(item, (*path, i)))
            return out
        if isinstance(node, ScalarNode):
            if node.style == "|":
                self.source.literal_starts[path] = node.start_mark.line + 2
            return self._scalar(node, path)
        self._issue(path, node, "unsupported YAML node")  # pragma: no cover - ruamel has only three
        return None

    def _scalar(self, node: ScalarNode, path: KeyPath) -> Any:
        try:
            return self.constructor.construct_object(node, deep=True)
        except ValueError:
            # An impossible date (2026-02-30) looks like a date but is none: keep the text, and the
            # model reports it at its key ("bad date" in a date field; a text field takes it as text).
            if node.tag == _TIMESTAMP:
                return node.value
            raise
        except YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            self._issue(path, node, f"cannot read value: {problem}")
            return None

    def _mapping(self, node: MappingNode, path: KeyPath) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self._issue(path, key_node, "mapping keys must be plain words or numbers")
                continue
            if key_node.tag == "tag:yaml.org,2002:merge" or key_node.value == "<<":
                self._issue(path, key_node, "merge keys (<<) are not supported; repeat the keys")
                continue
            key = self._scalar(key_node, path)
            name = str(key)
            line = key_node.start_mark.line + 1
            if name in first_line:
                self._issue(
                    (*path, name), key_node, f"duplicate key {name!r} (first defined on line {first_line[name]})"
                )
                continue
            first_line[name] = line
            self.source.key_lines[(*path, name)] = line
            out[key] = self.build(value_node, (*path, name))
        return out


def read_yaml(path: Path, display: str) -> tuple[SourceFile | None, list[PlaybookIssue]]:
    """Parse ``path``; returns the file (``None`` if unreadable) and every issue found.

    A file with duplicate keys still yields data (first value wins) so that the rest of it
    can be checked in the same run.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, [PlaybookIssue(display, None, "", f"cannot read file: {exc.strerror or exc}")]
    if len(raw) > MAX_FILE_BYTES:
        return None, [PlaybookIssue(display, None, "", f"file is larger than {MAX_FILE_BYTES} bytes")]
    try:
        text = raw.decode("utf-8-sig")  # Windows editors add a BOM; it is not content
    except UnicodeDecodeError as exc:
        bad_line = raw[: exc.start].count(b"\n") + 1
        return None, [PlaybookIssue(display, bad_line, "", "file is not valid UTF-8")]
    yaml = _yaml()
    try:
        # Aliases first, from the event stream: the composed tree no longer knows where the
        # alias was written, only where its anchor was.
        aliases = [
            PlaybookIssue(display, ev.start_mark.line + 1, "", _NO_ALIASES)
            for ev in yaml.parse(io.StringIO(text))
            if isinstance(ev, AliasEvent)
        ]
        if aliases:
            return None, aliases
        root = yaml.compose(io.StringIO(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = exc.problem or "invalid YAML"
        if exc.context:
            what += f" ({exc.context})"
        return None, [PlaybookIssue(display, line, "", f"YAML syntax error: {what}")]
    except YAMLError as exc:  # pragma: no cover - every parser error is marked in practice
        return None, [PlaybookIssue(display, None, "", f"YAML syntax error: {exc}")]
    source = SourceFile(path=path, display=display, data=None)
    source.key_lines[()] = 1
    if root is None:  # empty file or comments only
        return source, []
    builder = _Builder(source, yaml)
    source.data = builder.build(root, ())
    return source, builder.issues
