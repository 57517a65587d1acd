"""Send callbacks to the service the way WeCom does (encrypted envelope + signed query)."""

from __future__ import annotations

import itertools
from typing import Any

from aiohttp.test_utils import TestClient

from scrm.adapters.wecom.crypto import WeComCrypto

_nonce = itertools.count(100000)


def event_xml(change_type: str = "add_external_contact", *, event: str = "change_external_contact",
              create_time: int = 1763870000, to: str = "wx5823bf96d3bd56c7", **fields: str) -> str:
    extra = "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items())
    return (
        f"<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event><ChangeType><![CDATA[{change_type}]]></ChangeType>{extra}</xml>"
    )


def add_contact_xml(external_userid: str, userid: str = "zhangwei", *, create_time: int = 1763870000,
                    state: str = "lobby", welcome_code: str = "WC1") -> str:
    return event_xml("add_external_contact", create_time=create_time, UserID=userid,
                     ExternalUserID=external_userid, State=state, WelcomeCode=welcome_code)


async def post_event(client: TestClient[Any, Any], crypto: WeComCrypto, plaintext: str, *,
                     timestamp: str = "1763870000", path: str = "/wecom/callback") -> tuple[int, str]:
    nonce = str(next(_nonce))
    body, sig = crypto.envelope(plaintext, timestamp, nonce)
    resp = await client.post(path, params={"msg_signature": sig, "timestamp": timestamp, "nonce": nonce},
                             data=body.encode())
    return resp.status, await resp.text()
