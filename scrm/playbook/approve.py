"""Approve materials: write ``approved: {by, at, hash}`` into their YAML, keeping the file as it was.

The hash is the material's content hash (:mod:`scrm.playbook.contenthash`), so the approval
covers exactly the content the approver saw: a later edit is not approved until approved
again. Nothing is written unless every id can be approved: a material that does not validate or
says a banned claim (sop/compliance/claims.yaml) is refused, with the line to fix.

The file is rewritten with ruamel's round trip (comments, order, quotes and block texts kept),
then read back: the written approval must match the content it was given, or nothing is saved.
"""

from __future__ import annotations

import copy
import difflib
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString

from .claims import CLAIMS_FILE, ClaimsFile, claim_hits
from .models import Material
from .validate import validation_issues
from .yamlsrc import SourceFile, read_yaml


class ApprovalRefused(Exception):
    """Nothing was approved; ``str()`` says why in one line."""


@dataclass(frozen=True)
class Approved:
    """One material approved: where it is, by whom, on which day, and the content hash."""

    material: str
    file: str
    line: int
    by: str
    at: date
    hash: str

    def __str__(self) -> str:
        return f"approved {self.material} ({self.file}:{self.line}) by {self.by} on {self.at}, content {self.hash[:12]}"


@dataclass(frozen=True)
class _Item:
    source: SourceFile
    index: int
    data: dict[str, Any]

    @property
    def where(self) -> str:
        return f"{self.source.display}:{self.source.line_of((self.index,))}"


def _display(base: Path | None, path: Path) -> str:
    if base is not None:
        try:
            return path.resolve().relative_to(base).as_posix()
        except ValueError:
            pass
    return str(path)


def _find(materials_dir: Path, base: Path | None, ids: set[str]) -> dict[str, list[_Item]]:
    found: dict[str, list[_Item]] = {}
    for path in sorted(materials_dir.rglob("*.yaml")):
        source, _ = read_yaml(path, _display(base, path))
        if source is None or not isinstance(source.data, list):
            continue
        for i, item in enumerate(source.data):
            if isinstance(item, dict) and item.get("id") in ids:
                found.setdefault(str(item["id"]), []).append(_Item(source, i, item))
    return found


def _rules(sop_dir: Path, base: Path | None) -> ClaimsFile | None:
    path = sop_dir / CLAIMS_FILE
    if not path.is_file():
        return None
    source, issues = read_yaml(path, _display(base, path))
    try:
        if source is None or issues:
            raise ValueError
        return ClaimsFile.model_validate(source.data)
    except (ValidationError, ValueError):
        raise ApprovalRefused(f"{_display(base, path)} is invalid; `scrm sop validate` says where") from None


def _checked(mid: str, items: Sequence[_Item], by: str, at: date, rules: ClaimsFile | None) -> tuple[_Item, Material]:
    """The one item of ``mid``, validated as approved on ``at`` and free of banned claims."""
    if len(items) > 1:
        raise ApprovalRefused(f"material {mid!r} is defined twice ({items[0].where}, {items[1].where})")
    item = items[0]
    data = {**item.data, "approved": {"by": by, "at": at}}
    try:
        material = Material.model_validate(data)
    except ValidationError as exc:
        # Report at the file's own lines: the item as written, with the approval being given.
        first = validation_issues(item.source, exc, base=(item.index,), model=Material)[0]
        raise ApprovalRefused(f"material {mid!r} cannot be approved: {first}") from None
    hits = claim_hits(material, rules) if rules is not None else []
    if hits:
        hit = hits[0]
        path = (item.index, *hit.path)
        line = item.source.text_line(path, hit.offset, hit.text)
        raise ApprovalRefused(f"material {mid!r} cannot be approved: {item.source.display}:{line}: "
                              f"{hit.message}")
    return item, material


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096  # never re-fold a long line of text
    y.indent(mapping=2, sequence=2, offset=0)
    # One date approves several items: without this ruamel writes &id001/*id001, which the
    # playbook refuses (anchors make "which line is this" ambiguous).
    y.representer.ignore_aliases = lambda data: True
    return y


def rewrite_approvals(path: Path, approvals: Mapping[int, tuple[str, date, str]]) -> str:
    """The text of the materials file ``path`` (a list) with ``approved: {by, at, hash}`` set on
    the items at the given indexes, everything else as written."""
    y = _yaml()
    data = y.load(path.read_text(encoding="utf-8"))
    for index, (by, at, digest) in approvals.items():
        item = data[index]
        old = item.get("approved")
        if isinstance(old, CommentedMap):
            for key in list(old):
                del old[key]
            new = old  # keeps its flow or block style and its comments
        else:
            new = CommentedMap()
            new.fa.set_flow_style()
        new["by"], new["at"], new["hash"] = by, at, digest
        if old is None:
            _append(item, "approved", new)
        else:
            item["approved"] = new
    out = io.StringIO()
    y.dump(data, out)
    return out.getvalue()


def _append(item: CommentedMap, key: str, value: Any) -> None:
    """Add ``key`` as the item's last key. ruamel keeps what follows the old last key (its end of
    line comment, then blank lines and comments before the next item) in one token: the end of
    line comment stays, the rest moves after the new key, so items stay apart as written."""
    last = list(item)[-1] if item else None
    item[key] = value
    token = item.ca.items.get(last, [None, None, None])[2] if last is not None else None
    if token is None:
        return
    if isinstance(item[last], LiteralScalarString | FoldedScalarString):
        eol, rest = "", token.value  # a block text ends its own line
    else:
        eol, _, rest = token.value.partition("\n")
        eol += "\n"
    if rest:
        moved = copy.copy(token)
        moved.value = "\n" + rest
        item.ca.items[key] = [None, None, moved, None]
    if eol:
        token.value = eol
    else:
        del item.ca.items[last]


def approve_materials(sop_dir: Path, materials_dir: Path, ids: Iterable[str], *, by: str, at: date) -> list[Approved]:
    """Approve every material of ``ids`` (all or none) as of ``at`` by ``by``; what was written."""
    wanted = list(dict.fromkeys(ids))
    if not by.strip():
        raise ApprovalRefused("--by must name the approver")
    try:
        base: Path | None = Path(os.path.commonpath([sop_dir.resolve(), materials_dir.resolve()]))
    except ValueError:
        base = None
    found = _find(materials_dir, base, set(wanted))
    missing = [mid for mid in wanted if mid not in found]
    if missing:
        close = difflib.get_close_matches(missing[0], _all_ids(materials_dir), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ApprovalRefused(f"unknown material {missing[0]!r} (not in {_display(base, materials_dir)}/){hint}")
    rules = _rules(sop_dir, base)
    checked = [(mid, *_checked(mid, found[mid], by, at, rules)) for mid in wanted]
    by_file: dict[Path, dict[int, tuple[str, date, str]]] = {}
    for _, item, material in checked:
        by_file.setdefault(item.source.path, {})[item.index] = (by, at, material.content_hash)
    staged = [_stage(path, approvals) for path, approvals in by_file.items()]
    for tmp, path in staged:
        os.replace(tmp, path)
    return [Approved(mid, item.source.display, item.source.line_of((item.index,)), by, at, material.content_hash)
            for mid, item, material in checked]


def _stage(path: Path, approvals: Mapping[int, tuple[str, date, str]]) -> tuple[Path, Path]:
    """Write the rewritten file next to ``path`` and read it back: every approval written must
    match the content as now read (else nothing is replaced); (staged file, target)."""
    tmp = path.with_name(f".{path.name}.approving")
    tmp.write_text(rewrite_approvals(path, approvals), encoding="utf-8")
    source, _ = read_yaml(tmp, path.name)
    for index in approvals:
        try:
            material = Material.model_validate(source.data[index] if source is not None else None)
            ok = material.approved is not None and material.approved.hash == material.content_hash
        except ValidationError:
            ok = False
        if not ok:  # pragma: no cover - a round trip that changed what the file says
            tmp.unlink()
            raise ApprovalRefused(f"{path}: rewriting item {index} would change its content; nothing approved")
    return tmp, path


def _all_ids(materials_dir: Path) -> list[str]:
    ids: list[str] = []
    for path in sorted(materials_dir.rglob("*.yaml")):
        source, _ = read_yaml(path, path.name)
        items = source.data if source is not None and isinstance(source.data, list) else []
        ids += [str(i["id"]) for i in items if isinstance(i, dict) and "id" in i]
    return ids
