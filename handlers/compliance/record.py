"""What goes into the trail when a customer-facing message is known to have gone out.

The recorder is an outbox *sent hook* (:attr:`scrm.kernel.outbox.Outbox.sent_hooks`): it runs in
the very transaction that records the action ``sent`` — from WeCom's answer, from the answer
that proves an ambiguous first attempt went out, or from an operator who checked WeCom — so the
trail has a record exactly for each message that went out, never for one that did not.

Whoever queues such a message says what the trail cannot read from the request: in the action's
``about["trail"]`` (:func:`handlers.compliance.api.trail_about`): the kind, the sender, the
audience, the material and its content hash, and the policy decisions that let it through. An
action queued without it (before this existed) is still recorded, from its request alone, with
the decision ``"unrecorded"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from handlers.compliance.chain import append_many, content_hash
from scrm.kernel.outbox import Outbox, SentHook

SEND_WELCOME = "externalcontact/send_welcome_msg"
ADD_MSG_TEMPLATE = "externalcontact/add_msg_template"
TRANSFER_CUSTOMER = "externalcontact/transfer_customer"
ADD_MOMENT_TASK = "externalcontact/add_moment_task"
# The WeCom calls that put words in front of customers, and the kind each is recorded as
# when its queuer did not say. A Moments post is recorded when WeCom took the task (as a mass
# send is when it took the template), whatever the managers then publish.
CUSTOMER_FACING = {SEND_WELCOME: "welcome", ADD_MSG_TEMPLATE: "mass_send", TRANSFER_CUSTOMER: "handover",
                   ADD_MOMENT_TASK: "moment"}
# Request fields that route a message rather than say something: not part of its content hash.
ROUTING = frozenset({"welcome_code", "sender", "external_userid", "chat_id_list", "chat_type", "allow_select",
                     "handover_userid", "takeover_userid", "tag_filter", "visible_range",
                     "_suitability"})  # the send-time re-check's note (handlers.compliance.api.SUITABILITY_NOTE)


def message_content(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the customer sees of a request (text and attachments), as the content hash covers it."""
    if "transfer_success_msg" in body:
        return {"text": body["transfer_success_msg"]}
    return {k: v for k, v in body.items() if k not in ROUTING}


def fields_of(row: Mapping[str, Any], at: datetime, retain_days: Mapping[str, int], default_days: int) -> \
        dict[str, Any] | None:
    """The record of one sent action, or ``None`` when it showed a customer nothing (a handover
    without a message)."""
    payload = row["payload"]
    api, body = str(payload.get("api", "")), payload.get("body") or {}
    about = payload.get("about") or {}
    said: Mapping[str, Any] = about.get("trail") or {}
    if api == TRANSFER_CUSTOMER and not body.get("transfer_success_msg"):
        return None
    if body.get("chat_type") == "group":
        audience, audience_type = [str(c) for c in body.get("chat_id_list") or []], "group"
    else:
        ext = body.get("external_userid") or about.get("external_userid") or []
        audience, audience_type = [str(e) for e in ([ext] if isinstance(ext, str) else ext)], "customer"
    kind = str(said.get("kind") or CUSTOMER_FACING[api])
    return {
        "at": at, "kind": kind, "api": api, "outbox_key": str(row["idempotency_key"]),
        "msgid": str(row.get("wecom_msgid") or ""),
        "sender": str(said.get("sender") or body.get("sender") or body.get("takeover_userid")
                      or about.get("userid") or ""),
        "audience": list(said.get("audience") or audience), "audience_type": str(said.get("audience_type")
                                                                                  or audience_type),
        "material": str(said.get("material") or ""), "material_hash": str(said.get("material_hash") or ""),
        "text_hash": content_hash(message_content(body)),
        "decisions": [str(d) for d in said.get("decisions") or ["unrecorded"]],
        "retain_until": _retain_until(at, retain_days.get(kind, default_days)),
    }


def _retain_until(at: datetime, days: int) -> date:
    return (at + timedelta(days=days)).date()


def recorder(retain_days: Mapping[str, int], default_days: int) -> SentHook:
    async def record(conn: AsyncSession | AsyncConnection, sent: Sequence[tuple[Mapping[str, Any], datetime]]) -> None:
        # One append for the batch: one head read and move, however many went out together.
        records = [f for row, at in sent if (f := fields_of(row, at, retain_days, default_days)) is not None]
        await append_many(conn, records)

    return record


def install(outbox: Outbox, retain_days: Mapping[str, int], default_days: int) -> None:
    hook = recorder(retain_days, default_days)
    for api in CUSTOMER_FACING:
        outbox.sent_hooks.setdefault(api, []).append(hook)
