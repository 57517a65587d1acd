"""The tag map (sop/tags.yaml): CRM attributes → ``group/tag`` names. Pure functions, no I/O.

Only ``owner: crm`` groups are computed here; manager groups are never set or removed by sync.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from scrm.playbook.models import TagGroup


def crm_groups(tag_groups: Mapping[str, TagGroup]) -> dict[str, TagGroup]:
    """The CRM-owned groups, by group name."""
    return {name: spec for name, spec in tag_groups.items() if spec.owner == "crm"}


def manager_groups(tag_groups: Mapping[str, TagGroup]) -> list[str]:
    return [name for name, spec in tag_groups.items() if spec.owner == "manager"]


def all_crm_tag_names(tag_groups: Mapping[str, TagGroup]) -> list[str]:
    """Every tag a CRM group may hold, as ``group/tag`` (created ahead of a sync run)."""
    return [f"{g}/{t}" for g, spec in crm_groups(tag_groups).items() for t in spec.tag_names()]


def attribute_values(raw: Any) -> list[str]:
    """A CRM attribute as a list of strings: lists stay lists, "a|b" and "a;b" split, None is none
    (the tag map and the lifecycle's segment rules read multi-valued attributes the same way)."""
    if raw is None or raw == "":
        return []
    if isinstance(raw, list | tuple):
        return [str(v).strip() for v in raw if v is not None and str(v).strip()]
    if isinstance(raw, bool):
        return [str(raw).lower()]
    text = str(raw)
    for sep in ("|", ";"):
        if sep in text:
            return [p.strip() for p in text.split(sep) if p.strip()]
    return [text.strip()]


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool) or raw is None or raw == "":
        return None
    try:
        return float(str(raw).replace(",", ""))
    except ValueError:
        return None


def tags_for_group(spec: TagGroup, attributes: Mapping[str, Any]) -> list[str]:
    """Tag names (without the group) that ``attributes`` call for in one CRM group."""
    attr = (spec.source or "").removeprefix("crm.")
    raw = attributes.get(attr)
    if spec.bands:
        amount = _number(raw)
        if amount is None:
            return []
        for band in spec.bands:
            if band.below is None or amount < band.below:
                return [band.tag]
        return []
    return list(dict.fromkeys(spec.map[v] for v in attribute_values(raw) if v in spec.map))


# The shipped tag map's AUM bands, for a playbook that names none: a band, never the figure.
DEFAULT_AUM_BANDS: tuple[tuple[float | None, str], ...] = (
    (50_000, "5万以下"), (500_000, "5万-50万"), (6_000_000, "50万-600万"), (None, "600万以上"))


def aum_band(tag_groups: Mapping[str, TagGroup], aum: object) -> str:
    """The band AUM falls in ('' when unknown): the first whose upper bound exceeds it. The one
    rule for every page that shows a customer (sidebar, console): AUM leaves only as its band."""
    if not isinstance(aum, int | float | str) or isinstance(aum, bool):
        return ""
    try:
        amount = float(aum)
    except ValueError:
        return ""
    bands: Sequence[tuple[float | None, str]] = DEFAULT_AUM_BANDS
    for spec in tag_groups.values():
        if spec.source == "crm.aum" and spec.bands:
            bands = [(b.below, b.tag) for b in spec.bands]
    return next((tag for below, tag in bands if below is None or amount < below), "")


def desired_tags(tag_groups: Mapping[str, TagGroup], attributes: Mapping[str, Any]) -> list[str]:
    """Every CRM-owned ``group/tag`` the customer should carry, sorted."""
    names = [f"{g}/{t}" for g, spec in crm_groups(tag_groups).items() for t in tags_for_group(spec, attributes)]
    return sorted(set(names))


def digest(parts: Iterable[str]) -> str:
    """A short stable hash of a set of strings (idempotency keys, sync state)."""
    h = hashlib.sha256("\x1f".join(sorted(parts)).encode()).hexdigest()
    return h[:24]
