"""The outbox action kind that carries succession calls to WeCom (``succession.call``).

Why not the kernel's ``wecom`` kind: an interrupted transfer call there is parked ``unknown``
for an operator (WeCom has no idempotency key for it), and 5,000 customers would wait on a
person after a crash. A repeat of *these* calls is safe and recognisable instead: a customer our
earlier attempt already put in transfer answers 40129 (already being transferred), a group
already handed over answers 90500 (its owner is no longer a resigned member). So the action is
simply sent again after a crash or a lost reply, marked ``maybe_sent``, and the follower reads
those codes as "started by us" (:mod:`handlers.succession.follow`). Per-customer codes stay in
the action's result, which commits with its ``sent`` mark: nothing is lost between the call and
our record of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scrm.adapters.wecom.errors import AmbiguousCallError, LocalRateLimitError, WeComClientError, WeComError
from scrm.kernel.outbox import MAYBE_SENT, Outbox, Outcome, maybe_sent

KIND = "succession.call"
RESIGNED_TRANSFER = "externalcontact/resigned/transfer_customer"
ONJOB_TRANSFER = "externalcontact/transfer_customer"
GROUP_TRANSFER = "externalcontact/groupchat/transfer"
CHUNK = 100  # external_userid / chat_id_list: at most 100 per call


def install(outbox: Outbox) -> None:
    """Make ``succession.call`` actions sendable by this outbox."""
    outbox.executors[KIND] = execute


async def execute(outbox: Outbox, row: Mapping[str, Any]) -> Outcome:
    """One call; the reply (per-customer or per-group codes) is the action's result."""
    if outbox.wecom is None:
        return Outcome("pending", error="no WeCom client configured", delay_s=60, count_attempt=False)
    api = str(row["payload"]["api"])
    earlier = maybe_sent(row)
    try:
        reply = await outbox.wecom.call(api, dict(row["payload"]["body"]))
    except LocalRateLimitError as exc:
        return Outcome("pending", error=str(exc), delay_s=exc.retry_after_s, count_attempt=False)
    except AmbiguousCallError as exc:
        # Safe to send again (see the module's docstring); remember it may have gone out.
        return Outcome("pending", error=f"may have taken effect, asking again: {exc}", delay_s=1.0,
                       result={MAYBE_SENT: True})
    except WeComError as exc:
        if exc.retry_safe:
            return Outcome("pending", error=str(exc), delay_s=outbox._backoff(int(row["attempts"]) + 1))
        return Outcome("failed", error=str(exc))
    except WeComClientError as exc:  # nothing was sent
        return Outcome("pending", error=str(exc), delay_s=outbox._backoff(int(row["attempts"]) + 1))
    result = {k: v for k, v in reply.items() if k not in ("errcode", "errmsg")}
    return Outcome("sent", result={**result, MAYBE_SENT: earlier})


def transfer_body(handover: str, takeover: str, external_userids: list[str], *, resigned: bool,
                  message: str) -> dict[str, Any]:
    body: dict[str, Any] = {"handover_userid": handover, "takeover_userid": takeover,
                            "external_userid": external_userids}
    if not resigned and message:
        body["transfer_success_msg"] = message
    return body


def group_body(chat_ids: list[str], new_owner: str) -> dict[str, Any]:
    return {"chat_id_list": chat_ids, "new_owner_userid": new_owner}
