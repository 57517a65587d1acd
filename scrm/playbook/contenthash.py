"""The hash of what a material says: what an approval signs and what the message trail records.

One definition for both, so an auditor can match a trail record to the approval in git: the
``approved.hash`` in ``materials/*.yaml`` and the trail's ``material_hash`` are the same number.

Sign-off fields (``approved``, ``valid_until``) are not content: approving or extending a
material does not change what the customer reads. Fields left at their default are left out,
so adding a new optional field to :class:`~scrm.playbook.models.Material` (a later release)
does not change the hash of every material already approved; setting it does.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import Material

SIGN_OFF = frozenset({"approved", "valid_until"})


def content_hash(content: Any) -> str:
    """SHA-256 (hex) of JSON-able content, canonically: sorted keys, no spaces, UTF-8."""
    text = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def material_content(material: Material) -> dict[str, Any]:
    """What the hash covers: every field but the sign-off, defaults left out."""
    return material.model_dump(mode="json", exclude=set(SIGN_OFF), exclude_defaults=True)


def material_hash(material: Material) -> str:
    """The content hash of ``material`` (an edit of any of its texts, links or risk level shows)."""
    return content_hash(material_content(material))
