"""header_of's dedup key against a reference written the plain way (label every field, escape
every value, join), on many generated field sets: the fast path (one join, escaping only when a
value needs it, the key order cached per set of names) must give the same key, byte for byte."""

from __future__ import annotations

import hashlib
import json
import random

import pytest

from scrm.adapters.wecom.events import MAX_KEY_CHARS, XmlError, header_of

FIRST = ("MsgType", "Event", "ChangeType", "CreateTime", "FromUserName", "UserID", "ChatId", "Id",
         "ExternalUserID", "UpdateDetail", "TagType", "EventKey", "TaskId", "ResponseCode", "AgentID")
NAMES = ["MsgType", "FromUserName", "CreateTime", "Event", "ChangeType", "UserID", "ExternalUserID", "ChatId",
         "Z", "A", "ToUserName", "MsgId", "WelcomeCode", "MemChangeList", "UpdateDetail", "State"]
VALUES = ["", "sys", "event", "123", " 12 ", "a|b", "a%7Cb", "x\ny", "\r", "%", "中", "[1]", "=", "|", "evt|X=1"]


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str)


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("|", "%7C").replace("\n", "%0A").replace("\r", "%0D")


def reference_key(fields: dict[str, object]) -> str:
    msg_id = _text(fields.get("MsgId", ""))
    if msg_id:
        key = "msg:" + _escape(msg_id)
    else:
        names = [n for n in FIRST if n in fields] + sorted(n for n in fields if n not in FIRST and n != "ToUserName")
        labelled = [f"{n}={_escape(_text(fields[n]))}" for n in names if _text(fields[n])]
        key = "|".join(["sys" if fields["FromUserName"] == "sys" else "evt", *labelled])
    if len(key) > MAX_KEY_CHARS:
        digest = hashlib.sha256(key.encode()).hexdigest()
        key = key[: MAX_KEY_CHARS - 65] + "#" + digest
    return key


def _fields(rng: random.Random) -> dict[str, object]:
    fields: dict[str, object] = {}
    for _ in range(rng.randint(0, 9)):
        fields[rng.choice(NAMES)] = (rng.choice(VALUES) if rng.random() < 0.9
                                     else rng.choice([["a", "b|"], [{"x": "1"}], []]))
    # The header a key needs (header_of refuses a document without it).
    fields.update(MsgType="event", FromUserName=rng.choice(["sys", "zhangwei"]), CreateTime="1700000000")
    if rng.random() < 0.05:
        fields["Long"] = "y" * rng.randint(400, 700)
    return dict(rng.sample(list(fields.items()), len(fields)))  # any order of the names


def test_key_equals_the_reference_on_generated_fields() -> None:
    rng = random.Random(18)
    escaped = 0
    for _ in range(20000):
        fields = _fields(rng)
        key = header_of(fields).dedup_key
        assert key == reference_key(fields), fields
        escaped += "%7C" in key or "%0A" in key
    assert escaped > 1000  # the generator reaches the escaping path


@pytest.mark.parametrize("fields", [{"MsgType": "event", "FromUserName": "sys"},
                                    {"MsgType": "event", "FromUserName": "sys", "CreateTime": "x"}])
def test_header_errors_are_unchanged(fields: dict[str, object]) -> None:
    with pytest.raises(XmlError):
        header_of(fields)
