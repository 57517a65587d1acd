"""The behaviour matrix: segments × stages, how many customers sit in each cell, and which path
SOPs serve it. A cell with customers and no SOP is a gap in the service: it stands out.

A path covers a stage when it starts on it (``when: {stage_entered: silent}``) or requires its
tag; it covers a segment when it requires (``all``) or accepts (``any``) the segment's tag. A
path that names neither covers every row or column. Tags come from tags.yaml's groups fed by
``crm.stage`` and ``crm.seg_segments`` (the attributes :mod:`.nightly` writes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from scrm.playbook import PathSop, Playbook

from .models import CustomerSegment
from .rules import Lifecycle, Segmentation

NO_SEGMENT = ""  # the row of customers in no segment


@dataclass(frozen=True)
class Matrix:
    rows: tuple[tuple[str, str], ...]  # (segment name, label); NO_SEGMENT last
    columns: tuple[tuple[str, str], ...]  # (stage name, label)
    counts: Mapping[tuple[str, str], int]
    cover: Mapping[tuple[str, str], tuple[str, ...]]  # cell → path names

    def gaps(self) -> list[tuple[str, str]]:
        """Cells with customers and no SOP."""
        return [(r, c) for r, _ in self.rows for c, _ in self.columns
                if self.counts.get((r, c), 0) and not self.cover.get((r, c))]


def _tag_values(pb: Playbook, attribute: str) -> dict[str, str]:
    """``group/tag`` → attribute value, for the tags.yaml groups fed by ``crm.<attribute>``."""
    out: dict[str, str] = {}
    for group, spec in pb.tag_groups.items():
        if spec.source == f"crm.{attribute}":
            out.update({f"{group}/{tag}": value for value, tag in spec.map.items()})
    return out


def _covers(path: PathSop, stage_tags: Mapping[str, str], segment_tags: Mapping[str, str]
            ) -> tuple[set[str] | None, set[str] | None]:
    """(stages, segments) a path serves; None means all."""
    when = path.when
    stages: set[str] | None = {stage_tags[t] for t in when.all if t in stage_tags} or None
    if when.stage_entered is not None:
        stages = (stages or {when.stage_entered}) & {when.stage_entered}
    required = {segment_tags[t] for t in when.all if t in segment_tags}
    accepted = {segment_tags[t] for t in when.any if t in segment_tags}
    segments: set[str] | None = None
    if len(required) > 1:
        segments = set()  # a customer in both is counted in each row; the path serves neither alone
    elif required:
        segments = required
    elif accepted:
        segments = accepted
    return stages, segments


async def build(session: AsyncSession, seg: Segmentation, lc: Lifecycle, pb: Playbook) -> Matrix:
    counts: Counter[tuple[str, str]] = Counter()
    result = await session.stream(select(CustomerSegment.segments, CustomerSegment.stage)
                                  .where(CustomerSegment.stage.is_not(None)))
    async for names, stage in result:
        for name in names or [NO_SEGMENT]:
            counts[(name, stage or "")] += 1
    return replace(frame(seg, lc, pb), counts=dict(counts))


def frame(seg: Segmentation, lc: Lifecycle, pb: Playbook) -> Matrix:
    """The matrix without counts: its rows, columns and the paths covering each cell (the
    console fills the counts in from its stored snapshot)."""
    rows = (*((s.name, s.label) for s in seg.segments), (NO_SEGMENT, "未分类"))
    columns = tuple((s.name, s.label) for s in lc.stages)
    stage_tags, segment_tags = _tag_values(pb, "stage"), _tag_values(pb, "seg_segments")
    cover: dict[tuple[str, str], list[str]] = {}
    for path in pb.paths.values():
        if not path.active:
            continue
        stages, segments = _covers(path, stage_tags, segment_tags)
        for r, _ in rows:
            for c, _ in columns:
                if (stages is None or c in stages) and (segments is None or r in segments):
                    cover.setdefault((r, c), []).append(path.path)
    return Matrix(rows, columns, {}, {k: tuple(v) for k, v in cover.items()})


def render(m: Matrix) -> list[str]:
    """The matrix as text: counts per cell, ``!`` after a cell with customers and no SOP, then
    each cell's SOPs."""
    head = ["分类 \\ 阶段"] + [f"{label}({name})" for name, label in m.columns]
    table = [head]
    for r, label in m.rows:
        line = [f"{label}({r})" if r else label]
        for c, _ in m.columns:
            n = m.counts.get((r, c), 0)
            line.append(f"{n}{'!' if n and not m.cover.get((r, c)) else ''}")
        table.append(line)
    widths = [max(_width(row[i]) for row in table) for i in range(len(head))]
    out = ["  ".join(cell + " " * (w - _width(cell)) for cell, w in zip(row, widths, strict=True)).rstrip()
           for row in table]
    out.append("")
    out.append("覆盖 (SOP per cell):")
    for r, label in m.rows:
        for c, stage in m.columns:
            paths = m.cover.get((r, c), ())
            n = m.counts.get((r, c), 0)
            mark = "  ! 无SOP" if n and not paths else ""
            out.append(f"  {label} × {stage}: {', '.join(paths) or '-'} ({n}){mark}")
    gaps = m.gaps()
    out.append(f"{len(gaps)} cell(s) with customers and no SOP")
    return out


def _width(text: str) -> int:
    # CJK characters take two columns in a terminal.
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)
