"""Link tokens: genuine ones verify; every tampered, truncated, foreign or forged one is refused."""

from __future__ import annotations

import itertools
import json
import string

import pytest

from scrm.radar import tokens
from scrm.radar.tokens import Claims, sign, verify

KEY = b"test-radar-key"
ALPHABET = string.ascii_letters + string.digits + "-_"


def _token(**claims: str) -> str:
    return sign(KEY, claims.get("material", "m-fund"), claims.get("sender", "zhangwei"),
                customer=claims.get("customer", "wmCustomer0001"),
                occurrence=claims.get("occurrence", "sop:onboard:day3@2026-11-23"))


def _signed(payload_fields: object) -> str:
    """A correctly MACed token around any payload: what a key holder's bug could produce."""
    payload = tokens._b64(json.dumps(payload_fields).encode())
    return f"{payload}.{tokens._b64(tokens._mac(KEY, payload))}"


def test_genuine_token_round_trips() -> None:
    claims = verify(KEY, _token())
    assert claims == Claims("m-fund", "zhangwei", "wmCustomer0001", "sop:onboard:day3@2026-11-23",
                            token_id=claims.token_id if claims else "")
    assert claims is not None and len(claims.token_id) == 2 * tokens.MAC_BYTES
    # Absent customer and occurrence come back as None, non-ASCII claims survive.
    group = verify(KEY, sign(KEY, "m-基金", "李娜"))
    assert group is not None and (group.material, group.sender, group.customer, group.occurrence) == (
        "m-基金", "李娜", None, None)


def test_every_single_character_change_is_refused() -> None:
    token = _token()
    mac = token.split(".")[1]
    assert len(mac) == 22  # 16 bytes: the last character carries 2 bits, its other 4 are spare
    for i, original in enumerate(token):
        for other in ALPHABET + ".=":
            if other == original:
                continue
            tampered = token[:i] + other + token[i + 1:]
            assert verify(KEY, tampered) is None, (i, original, other)


def test_truncated_extended_and_reshaped_tokens_are_refused() -> None:
    token = _token()
    payload, mac = token.split(".")
    for n in range(len(token)):
        assert verify(KEY, token[:n]) is None, n
    for bad in (token + "A", token + "=", token + "==", "A" + token, f"{payload}.{mac}.{mac}", f"{payload}..{mac}",
                f".{mac}", f"{payload}.", mac, payload, token.replace(".", ""), token + "\u00e9", "é" * 40,
                "x" * (tokens.MAX_TOKEN_CHARS + 1), ""):
        assert verify(KEY, bad) is None, bad


def test_wrong_key_is_refused() -> None:
    token = _token()
    assert verify(b"another-key", token) is None
    assert verify(KEY + b"x", token) is None
    assert verify(KEY, sign(b"another-key", "m-fund", "zhangwei")) is None


def test_claims_cannot_be_swapped_under_a_genuine_mac() -> None:
    token = _token(customer="wmCustomer0001")
    _, mac = token.split(".")
    for customer in ("wmCustomer0002", "", "wmCustomer00011"):
        forged_payload = _token(customer=customer).split(".")[0]
        assert verify(KEY, f"{forged_payload}.{mac}") is None, customer


@pytest.mark.parametrize("fields", [
    [2, "m-fund", "zhangwei", "", ""],  # unknown version
    [1, "", "zhangwei", "", ""],  # no material
    [1, "m-fund", "zhangwei", ""],  # too short
    [1, "m-fund", "zhangwei", "", "", ""],  # too long
    [1, "m-fund", 7, "", ""],
    [1, "m-fund", "zhangwei", None, ""],
    {"material": "m-fund"},
    "m-fund",
])
def test_genuinely_signed_but_malformed_payloads_are_refused(fields: object) -> None:
    assert verify(KEY, _signed(fields)) is None
    assert verify(KEY, _signed([1, "m-fund", "zhangwei", "", ""])) is not None  # the control


def test_distinct_sends_get_unrelated_tokens() -> None:
    """Not enumerable: each send has its own token, and knowing some tells nothing of the next."""
    sends = [(f"m-{m}", s, c, o) for m in range(3) for s in ("zhangwei", "lina") for c in ("", "wmA", "wmB")
             for o in ("", "sop:a@2026-11-23", "sop:a@2026-11-24")]
    minted = [sign(KEY, m, s, customer=c or None, occurrence=o or None) for m, s, c, o in sends]
    assert len(set(minted)) == len(sends)
    ids = [verify(KEY, t).token_id for t in minted]  # type: ignore[union-attr]
    assert len(set(ids)) == len(sends)
    # Neighbouring sends' MACs look unrelated (a random pair agrees on ~1 of 22 places).
    macs = [t.split(".")[1] for t in minted]
    assert max(sum(x == y for x, y in zip(a, b, strict=True)) for a, b in itertools.pairwise(macs)) < 6
    # The same send minted twice is the same token: counted once as a send.
    assert sign(KEY, "m-0", "lina", customer="wmA") == sign(KEY, "m-0", "lina", customer="wmA")
