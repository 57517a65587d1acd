"""What other features use of compliance: how to tell the trail what a queued message is."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.compliance.archive.triage import (
    DECISIONS,
    STATUSES,
    CaseInContext,
    CaseLine,
    case_counts,
    case_in_context,
    list_cases,
    triage_case,
)
from handlers.compliance.chain import append, content_hash
from handlers.compliance.settings import compliance_settings
from scrm.kernel.config import Settings
from scrm.playbook import Material

# What a message sent from the manager's own WeCom client (the sidebar's one tap) is recorded as:
# it never passes the outbox, so the sidebar records it when the page reports the send.
CHAT_SEND = "jssdk/sendChatMessage"


def material_hash(material: Material) -> str:
    """The hash of a material's content as the playbook holds it (an edit of its text shows): the
    same number its ``approved.hash`` records (one definition: scrm.playbook.contenthash)."""
    return material.content_hash


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


async def record_chat_send(db: AsyncSession, settings: Settings, *, at: datetime, sender: str, audience: str,
                           audience_type: str, material: Material, content: Any, decisions: Iterable[str]) -> int:
    """Record a message the manager put into a chat from the sidebar, in ``db``'s transaction
    (the one that records the send); returns its number in the trail."""
    cfg = compliance_settings(settings)
    said = trail_about("sidebar", sender=sender, audience=[audience], audience_type=audience_type, material=material,
                       decisions=decisions)
    days = cfg.retain_days_by_kind.get("sidebar", cfg.retain_days)
    return await append(db, {"at": at, "kind": "sidebar", "api": CHAT_SEND, "outbox_key": "", "msgid": "",
                             "sender": sender, "audience": said["audience"], "audience_type": audience_type,
                             "material": said["material"], "material_hash": said["material_hash"],
                             "text_hash": content_hash(content), "decisions": said["decisions"],
                             "retain_until": (at + timedelta(days=days)).date()})


# The console's case pages (conversation review) read and triage cases through these.
__all__ = ["DECISIONS", "STATUSES", "CaseInContext", "CaseLine", "case_counts", "case_in_context", "content_hash",
           "list_cases", "material_hash", "record_chat_send", "trail_about", "triage_case"]

# Suitability (适当性) and marketing consent: the SOP planner, the send-time re-check and the
# sidebar ask these about one customer (handlers.compliance.suitability / .consent).
from handlers.compliance.consent import SOURCES as CONSENT_SOURCES  # noqa: E402
from handlers.compliance.consent import Said, consent_rows, record_consent  # noqa: E402
from handlers.compliance.suitability import (  # noqa: E402
    CustomerFacts,
    ProductNote,
    decisions,
    facts_of,
    is_product,
    reason_zh,
    refusal,
)

SUITABILITY_NOTE = "_suitability"
"""The key of a queued 1:1 add_msg_template body that names its product material for the
send-time re-check (removed before the call; never part of what the customer sees)."""

__all__ += ["CONSENT_SOURCES", "SUITABILITY_NOTE", "CustomerFacts", "ProductNote", "Said", "consent_rows",
            "decisions", "facts_of", "is_product", "reason_zh", "record_consent", "refusal"]

from handlers.compliance.prefs import CATEGORY_NAMES  # noqa: E402

__all__ += ["CATEGORY_NAMES"]
