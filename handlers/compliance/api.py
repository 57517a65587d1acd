"""What other features use of compliance: how to tell the trail what a queued message is."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from handlers.compliance.chain import content_hash
from scrm.playbook import Material

# Material fields that are sign-off, not content: approving or extending a material does not
# change what the customer reads, so it does not change the material's hash.
SIGN_OFF = frozenset({"approved", "valid_until"})


def material_hash(material: Material) -> str:
    """The hash of a material's content as the playbook holds it (an edit of its text shows)."""
    return content_hash(material.model_dump(mode="json", exclude=set(SIGN_OFF)))


def approval_decisions(material: Material) -> list[str]:
    """The sign-off that let ``material`` out (the gate refuses it without one)."""
    approved = material.approved
    return [f"approved by {approved.by} on {approved.at}" if approved else "not approved",
            f"valid until {material.valid_until}" if material.valid_until else "no expiry"]


def trail_about(kind: str, *, sender: str, audience: Iterable[str], audience_type: str = "customer",
                material: Material | None = None, decisions: Iterable[str] = ()) -> dict[str, Any]:
    """The ``about["trail"]`` of an outbox action that shows a customer something: recorded in
    the message trail when (and only when) it has gone out, with the material's sign-off first
    among the decisions."""
    return {"kind": kind, "sender": sender, "audience": list(audience), "audience_type": audience_type,
            "material": material.id if material else "", "material_hash": material_hash(material) if material else "",
            "decisions": [*(approval_decisions(material) if material else []), *decisions]}


__all__ = ["content_hash", "material_hash", "trail_about"]
