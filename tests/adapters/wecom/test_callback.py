"""The callback endpoint over real HTTP: official vectors, bad input, duplicates."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from handlers.timeline.models import Timeline
from scrm.adapters.wecom.crypto import WeComCrypto
from scrm.kernel.models import InboxEvent
from tests.conftest import TEST_AES_KEY, TEST_CORP_ID, TEST_TOKEN, make_settings
from tests.fakes.wecom_sender import add_contact_xml, post_event
from tests.support.service import drain, running_service, spine_routers

CRYPTO = WeComCrypto(TEST_TOKEN, TEST_AES_KEY, TEST_CORP_ID)


async def count_inbox(runtime: Any) -> int:
    async with runtime.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(InboxEvent)) or 0)


async def test_get_verification_returns_exact_plaintext(db_url: str, vectors: dict[str, Any]) -> None:
    v = vectors["vectors"][0]
    async with running_service(make_settings(db_url), routers=spine_routers()) as (_, client):
        # A real GET carries echostr URL-encoded (+ / = as %2B %2F %3D): build the query by hand.
        qs = (f"msg_signature={v['msg_signature']}&timestamp={v['timestamp']}&nonce={v['nonce']}"
              f"&echostr={quote(v['encrypted'], safe='')}")
        resp = await client.get(f"/wecom/callback?{qs}")
        assert resp.status == 200
        body = await resp.read()
        assert body == v["expected_plaintext"].encode()  # no quotes, no BOM, no newline


async def test_official_post_is_stored_and_dispatched(db_url: str, vectors: dict[str, Any]) -> None:
    v = vectors["vectors"][1]
    async with running_service(make_settings(db_url), routers=spine_routers()) as (runtime, client):
        body = (f"<xml><ToUserName><![CDATA[{v['receive_id']}]]></ToUserName>"
                f"<Encrypt><![CDATA[{v['encrypted']}]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>")
        resp = await client.post("/wecom/callback", params={"msg_signature": v["msg_signature"],
                                 "timestamp": v["timestamp"], "nonce": v["nonce"]}, data=body.encode())
        assert resp.status == 200
        assert await resp.read() == b""
        async with runtime.sessions() as s:
            row = (await s.scalars(select(InboxEvent))).one()
        assert row.dedup_key == "msg:4561255354251345929"
        assert row.msg_type == "text"
        assert await drain(runtime) == 1
        async with runtime.sessions() as s:
            row = (await s.scalars(select(InboxEvent))).one()
            entries = (await s.scalars(select(Timeline))).all()
        assert row.status == "done"
        assert [(e.subject_type, e.subject_id, e.kind) for e in entries] == [("member", "mycreate", "message.text")]
        assert entries[0].detail["content"] == "hello"


def _bad_envelope(enc: str) -> str:
    return f"<xml><ToUserName><![CDATA[{TEST_CORP_ID}]]></ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt></xml>"


BILLION_LAUGHS = """<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;">]><xml><Encrypt>&lol3;</Encrypt></xml>"""
XXE = """<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Encrypt>&e;</Encrypt></xml>"""


def _raw_encrypt(plain: bytes) -> str:
    """Encrypt raw bytes with a custom framing (to build broken-but-decryptable payloads)."""
    from wechatpy.crypto.base import WeChatCipher
    return base64.b64encode(WeChatCipher(CRYPTO.key).encrypt(plain)).decode()


def _framed(msg: bytes, receive_id: bytes = TEST_CORP_ID.encode()) -> str:
    import struct

    from wechatpy.crypto.pkcs7 import PKCS7Encoder
    return _raw_encrypt(PKCS7Encoder.encode(b"1234567890123456" + struct.pack(">I", len(msg)) + msg + receive_id))


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 8192):
        yield body[start:start + 8192]


@pytest.mark.parametrize(
    ("case", "expected_status"),
    [
        ("missing_params", 400),
        ("bad_signature", 403),
        ("wrong_receive_id", 403),
        ("not_base64", 400),
        ("truncated_base64", 400),
        ("padding_garbage", 400),
        ("plaintext_not_xml", 400),
        ("plaintext_doctype", 400),
        ("envelope_billion_laughs", 400),
        ("envelope_xxe", 400),
        ("envelope_not_xml", 400),
        ("body_too_large", 413),
        ("body_too_large_chunked", 413),
        ("invalid_utf8", 400),
        ("plaintext_invalid_utf8", 400),
        ("missing_encrypt", 400),
        ("bad_timestamp", 400),
    ],
)
async def test_bad_input_is_rejected_and_nothing_stored(sqlite_url: str, case: str, expected_status: int,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    ts, nonce = "1763870000", "42"
    plain = add_contact_xml("wmCustomer1")
    enc = CRYPTO.encrypt(plain)
    params: dict[str, str] = {"msg_signature": CRYPTO.sign(ts, nonce, enc), "timestamp": ts, "nonce": nonce}
    body: bytes = _bad_envelope(enc).encode()

    def signed(e: str) -> None:
        nonlocal body
        body = _bad_envelope(e).encode()
        params["msg_signature"] = CRYPTO.sign(params["timestamp"], nonce, e)

    if case == "missing_params":
        del params["nonce"]
    elif case == "bad_signature":
        params["msg_signature"] = params["msg_signature"][:-1] + ("0" if params["msg_signature"][-1] != "0" else "1")
    elif case == "wrong_receive_id":
        signed(WeComCrypto(TEST_TOKEN, TEST_AES_KEY, "ww0000000000000000").encrypt(plain))
    elif case == "not_base64":
        signed("!!!not*base64!!!")
    elif case == "truncated_base64":
        signed(enc[: len(enc) // 2 - 3])
    elif case == "padding_garbage":
        signed(_raw_encrypt(b"x" * 63 + b"\x00"))
    elif case == "plaintext_not_xml":
        signed(_framed(b"this is not xml at all"))
    elif case == "plaintext_doctype":
        signed(_framed(b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><MsgType>&e;</MsgType></xml>'))
    elif case == "envelope_billion_laughs":
        body = BILLION_LAUGHS.encode()
    elif case == "envelope_xxe":
        body = XXE.encode()
    elif case == "envelope_not_xml":
        body = b"{\"Encrypt\": \"json?\"}"
    elif case in ("body_too_large", "body_too_large_chunked"):
        body = _bad_envelope(enc + "A" * 70_000).encode()
    elif case == "invalid_utf8":
        body = b"<xml><Encrypt>\xff\xfe</Encrypt></xml>"
    elif case == "plaintext_invalid_utf8":
        signed(_framed(b"<xml><MsgType>\xff\xfe</MsgType></xml>"))
    elif case == "missing_encrypt":
        body = b"<xml><ToUserName>x</ToUserName></xml>"
    elif case == "bad_timestamp":
        params["timestamp"] = "yesterday"

    async with running_service(make_settings(sqlite_url), routers=spine_routers()) as (runtime, client):
        # A chunked body carries no Content-Length: the limit is met while reading.
        data: Any = _chunks(body) if case.endswith("_chunked") else body
        resp = await client.post("/wecom/callback", params=params, data=data)
        text = await resp.text()
        assert resp.status == expected_status, text
        assert text.count("\n") == 1 and len(text) < 200  # one line, a reason
        assert await count_inbox(runtime) == 0
        # The service keeps running: a good event right after is accepted.
        status, _ = await post_event(client, CRYPTO, plain)
        assert status == 200
        assert await count_inbox(runtime) == 1
    assert any("callback rejected" in r.getMessage() for r in caplog.records)


async def test_timestamp_window_rejects_stale_callbacks(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, server={"timestamp_window_s": 300})
    async with running_service(settings, routers=spine_routers()) as (runtime, client):
        now = int(runtime.clock.now().timestamp())
        status, _ = await post_event(client, CRYPTO, add_contact_xml("wmA"), timestamp=str(now - 3600))
        assert status == 403
        status, _ = await post_event(client, CRYPTO, add_contact_xml("wmA"), timestamp=str(now - 10))
        assert status == 200


async def test_duplicate_delivery_is_acknowledged_and_processed_once(db_url: str) -> None:
    async with running_service(make_settings(db_url), routers=spine_routers()) as (runtime, client):
        xml = add_contact_xml("wmDup")
        for _ in range(4):  # the first delivery plus WeCom's three retries
            status, body = await post_event(client, CRYPTO, xml)
            assert (status, body) == (200, "")
        assert await count_inbox(runtime) == 1
        assert await drain(runtime) == 1
        async with runtime.sessions() as s:
            n = await s.scalar(select(func.count()).select_from(Timeline).where(Timeline.subject_id == "wmDup"))
        assert n == 1


async def test_unknown_event_type_is_stored_not_rejected(db_url: str) -> None:
    from tests.fakes.wecom_sender import event_xml

    async with running_service(make_settings(db_url), routers=spine_routers()) as (runtime, client):
        status, _ = await post_event(client, CRYPTO, event_xml("brand_new_change", event="some_future_event",
                                                                Foo="bar"))
        assert status == 200
        assert await drain(runtime) == 1
        async with runtime.sessions() as s:
            row = (await s.scalars(select(InboxEvent))).one()
        assert (row.event, row.change_type, row.status) == ("some_future_event", "brand_new_change", "done")


async def test_storage_failure_is_not_acknowledged(sqlite_url: str) -> None:
    async with running_service(make_settings(sqlite_url), routers=spine_routers()) as (runtime, client):
        await runtime.engine.dispose()
        async with runtime.engine.begin() as conn:
            from sqlalchemy import text
            await conn.execute(text("DROP TABLE timeline"))
            await conn.execute(text("ALTER TABLE inbox_event RENAME TO inbox_event_gone"))
        status, _ = await post_event(client, CRYPTO, add_contact_xml("wmX"))
        assert status == 503  # WeCom will retry; nothing was acknowledged that is not durable
