"""The built-in WeCom (企业微信) sandbox: a stateful emulator of the server APIs plus a callback driver.

It stands in for ``qyapi.weixin.qq.com`` in tests, demos and ``--sandbox`` runs. The pieces:

- :mod:`scrm.sandbox.state` — the in-memory tenant (members, customers, tags, groups, tasks, logs);
- :mod:`scrm.sandbox.server` — the aiohttp app serving ``/cgi-bin/...`` exactly as WeCom's wire
  protocol (PROTOCOL.md §4): JSON in, ``{"errcode", "errmsg", ...}`` out, always HTTP 200;
- :mod:`scrm.sandbox.faults` — injected failures (busy, rate limits, slow and dropped replies);
- :mod:`scrm.sandbox.driver` — plays WeCom towards our callback URL (encrypted events, retries);
- :mod:`scrm.sandbox.demo` — a small bank tenant to start from.

Like real WeCom, changes made through the API never fire callbacks; only the driver does.
"""

from __future__ import annotations

#: The sandbox tenant's corp id (the callback ReceiveId of a self-built app).
SANDBOX_CORP_ID = "wwsandbox0000001"
#: The self-built app's secret accepted by ``/cgi-bin/gettoken``.
SANDBOX_SECRET = "sandbox-secret-not-for-production"
#: Callback Token (letters/digits, ≤32 chars).
SANDBOX_TOKEN = "scrmSandboxToken2026"
#: Callback EncodingAESKey (43 characters of [a-zA-Z0-9]).
SANDBOX_AES_KEY = "scrmSandboxEncodingAesKey0123456789abcdefgh"
#: The self-built app's agent id.
SANDBOX_AGENT_ID = 1000002

__all__ = ["SANDBOX_AES_KEY", "SANDBOX_AGENT_ID", "SANDBOX_CORP_ID", "SANDBOX_SECRET", "SANDBOX_TOKEN"]
