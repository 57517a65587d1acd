"""Write-back: manager-made tag changes delivered to the CRM's webhook through the outbox.

Outbox kind ``crm.webhook``; lane ``crm:{crm_id}`` keeps one customer's changes in order. The
request is signed like the CRM's pushes to us (:mod:`handlers.crm.auth`) and carries the outbox
idempotency key in ``X-Scrm-Idempotency-Key``: a call that may have arrived (timeout after
sending) is retried, and the CRM drops the repeat by that key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from handlers.crm.auth import headers
from handlers.crm.settings import CrmSettings
from scrm.kernel.outbox import Outbox, Outcome

KIND = "crm.webhook"
KEY_HEADER = "X-Scrm-Idempotency-Key"
TIMEOUT_S = 10.0


def register(outbox: Outbox, settings: CrmSettings) -> None:
    """Make ``crm.webhook`` actions sendable by this outbox."""

    async def execute(box: Outbox, row: Mapping[str, Any]) -> Outcome:
        return await deliver(box, row, settings)

    outbox.executors[KIND] = execute


async def deliver(outbox: Outbox, row: Mapping[str, Any], settings: CrmSettings) -> Outcome:
    """One signed POST; 2xx is done, 4xx (but 408/429) is final, anything else retries."""
    if not settings.webhook_url:
        return Outcome("pending", error="crm.webhook_url not configured", delay_s=3600, count_attempt=False)
    body = json.dumps(row["payload"]["body"], ensure_ascii=False, separators=(",", ":")).encode()
    hdrs = headers(settings.webhook_secret.get_secret_value(), int(outbox.clock.now().timestamp()), body)
    hdrs[KEY_HEADER] = str(row["idempotency_key"])
    backoff = outbox._backoff(int(row["attempts"]) + 1)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as http, \
                http.post(settings.webhook_url, data=body, headers=hdrs) as resp:
            status = resp.status
            text = (await resp.text())[:300]
    except (aiohttp.ClientError, TimeoutError) as exc:
        # Retrying is safe either way: the CRM deduplicates by the idempotency key.
        return Outcome("pending", error=f"webhook unreachable: {type(exc).__name__}: {exc}", delay_s=backoff)
    if 200 <= status < 300:
        return Outcome("sent", result={"status": status})
    if status in (408, 429) or status >= 500:
        return Outcome("pending", error=f"webhook answered {status}: {text}", delay_s=backoff)
    return Outcome("failed", error=f"webhook refused the change ({status}): {text}")
