"""Link tokens: genuine ones verify and reveal nothing; every tampered, truncated, foreign or
forged one is refused; links minted in the old (v1) format keep working."""

from __future__ import annotations

import base64
import binascii
import itertools
import string

import pytest

from handlers.radar import tokens
from handlers.radar.tokens import Claims, sign, verify
from tests.handlers.radar.legacy import sign_v1, wrap_v1

KEY = b"test-radar-key"
ALPHABET = string.ascii_letters + string.digits + "-_"
CUSTOMER = "wmCustomer0001"
SENDER = "zhangwei"
# A welcome occurrence carries WeCom's welcome code: a bearer credential for 20 seconds.
WELCOME_CODE = "CALLBACK_WELCOME_CODE_3f9a1c"
OCCURRENCE = f"welcome:payroll-onboarding@{WELCOME_CODE}"


def _token(**claims: str) -> str:
    return sign(KEY, claims.get("material", "m-fund"), claims.get("sender", SENDER),
                customer=claims.get("customer", CUSTOMER), occurrence=claims.get("occurrence", OCCURRENCE))


def _decoded_segments(token: str) -> list[bytes]:
    """Every "."-separated segment, base64url-decoded however it can be (what a curious reader does)."""
    out = []
    for segment in token.split("."):
        for start in range(4):  # every alignment: a field could sit at any offset
            part = segment[start:]
            try:
                out.append(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
            except (binascii.Error, ValueError):
                continue
    return out


def test_genuine_token_round_trips() -> None:
    claims = verify(KEY, _token())
    assert claims == Claims("m-fund", SENDER, CUSTOMER, OCCURRENCE, token_id=claims.token_id if claims else "")
    assert claims is not None and len(claims.token_id) == 2 * tokens.SIV_BYTES
    int(claims.token_id, 16)
    # Absent customer and occurrence come back as None, non-ASCII claims survive.
    group = verify(KEY, sign(KEY, "m-基金", "李娜"))
    assert group is not None and (group.material, group.sender, group.customer, group.occurrence) == (
        "m-基金", "李娜", None, None)


def test_a_token_reveals_none_of_the_ids() -> None:
    for customer, occurrence in ((CUSTOMER, OCCURRENCE), (CUSTOMER, ""), ("", OCCURRENCE)):
        token = _token(customer=customer, occurrence=occurrence)
        hidden = [x for x in (customer, SENDER, "m-fund", WELCOME_CODE if occurrence else "") if x]
        decoded = _decoded_segments(token)
        assert decoded  # the check below looked at something
        for x in hidden:
            assert x not in token, x
            assert not any(x.encode() in raw for raw in decoded), x
    # The control: the same check does find them in an old-format token.
    old = sign_v1(KEY, "m-fund", SENDER, customer=CUSTOMER, occurrence=OCCURRENCE)
    assert any(CUSTOMER.encode() in raw and WELCOME_CODE.encode() in raw for raw in _decoded_segments(old))


def test_tokens_are_url_safe_and_shorter_than_before() -> None:
    token = _token()
    assert set(token) <= set(ALPHABET)
    old = sign_v1(KEY, "m-fund", SENDER, customer=CUSTOMER, occurrence=OCCURRENCE)
    # 16 bytes of synthetic IV (the MAC) + the fields and three separators, base64url.
    plain = len("m-fund") + len(SENDER) + len(CUSTOMER) + len(OCCURRENCE) + 3
    assert len(token) == -(-4 * (tokens.SIV_BYTES + plain) // 3)
    assert len(token) < len(old)


def test_every_single_character_change_is_refused() -> None:
    token = _token()
    for i, original in enumerate(token):
        for other in ALPHABET + ".=":
            if other == original:
                continue
            tampered = token[:i] + other + token[i + 1:]
            assert verify(KEY, tampered) is None, (i, original, other)


def test_truncated_extended_and_reshaped_tokens_are_refused() -> None:
    token = _token()
    for n in range(len(token)):
        assert verify(KEY, token[:n]) is None, n
        assert verify(KEY, token[n:] if n else token + "A") is None, n
    for bad in (token + "A", token + "=", token + "==", "A" + token, f"{token}.{token}", f"{token}.",
                f".{token}", token + "\u00e9", token[:10] + " " + token[10:], token[:10] + "\n" + token[10:],
                "é" * 40, "x" * (tokens.MAX_TOKEN_CHARS + 1), ""):
        assert verify(KEY, bad) is None, bad


def test_wrong_key_is_refused() -> None:
    token = _token()
    assert verify(b"another-key", token) is None
    assert verify(KEY + b"x", token) is None
    assert verify(KEY, sign(b"another-key", "m-fund", SENDER)) is None


def test_distinct_sends_get_unrelated_tokens() -> None:
    """Not enumerable: each send has its own token, and knowing some tells nothing of the next."""
    sends = [(f"m-{m}", s, c, o) for m in range(3) for s in ("zhangwei", "lina") for c in ("", "wmA", "wmB")
             for o in ("", "sop:a@2026-11-23", "sop:a@2026-11-24")]
    minted = [sign(KEY, m, s, customer=c or None, occurrence=o or None) for m, s, c, o in sends]
    assert len(set(minted)) == len(sends)
    ids = [verify(KEY, t).token_id for t in minted]  # type: ignore[union-attr]
    assert len(set(ids)) == len(sends)
    # Neighbouring sends look unrelated from the first character on (the IV leads the token);
    # a random pair agrees on ~1 of 22 places.
    heads = [t[:22] for t in minted]
    assert max(sum(x == y for x, y in zip(a, b, strict=True)) for a, b in itertools.pairwise(heads)) < 6
    # The same send minted twice is the same token: counted once as a send.
    assert sign(KEY, "m-0", "lina", customer="wmA") == sign(KEY, "m-0", "lina", customer="wmA")


def test_fields_that_would_blur_the_plaintext_are_refused_at_minting() -> None:
    with pytest.raises(ValueError, match="NUL"):
        sign(KEY, "m-fund", SENDER, customer="wm\x00A")


# ---------------------------------------------------------------------------- v1 links


def test_old_format_token_still_verifies_with_its_own_token_id() -> None:
    old = sign_v1(KEY, "m-fund", SENDER, customer=CUSTOMER, occurrence=OCCURRENCE)
    claims = verify(KEY, old)
    assert claims is not None
    assert (claims.material, claims.sender, claims.customer, claims.occurrence) == (
        "m-fund", SENDER, CUSTOMER, OCCURRENCE)
    # The id the old code gave it (its MAC): clicks on it still match the send it recorded.
    mac = old.split(".")[1]
    assert claims.token_id == base64.urlsafe_b64decode(mac + "==").hex()
    assert verify(KEY, sign_v1(b"another-key", "m-fund", SENDER)) is None


def test_every_single_character_change_of_an_old_token_is_refused() -> None:
    token = sign_v1(KEY, "m-fund", SENDER, customer=CUSTOMER, occurrence="sop:onboard:day3@2026-11-23")
    mac = token.split(".")[1]
    assert len(mac) == 22  # 16 bytes: the last character carries 2 bits, its other 4 are spare
    for i, original in enumerate(token):
        for other in ALPHABET + ".=":
            if other == original:
                continue
            tampered = token[:i] + other + token[i + 1:]
            assert verify(KEY, tampered) is None, (i, original, other)


def test_old_claims_cannot_be_swapped_under_a_genuine_mac() -> None:
    token = sign_v1(KEY, "m-fund", SENDER, customer=CUSTOMER)
    _, mac = token.split(".")
    for customer in ("wmCustomer0002", "", "wmCustomer00011"):
        forged_payload = sign_v1(KEY, "m-fund", SENDER, customer=customer).split(".")[0]
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
def test_genuinely_signed_but_malformed_old_payloads_are_refused(fields: object) -> None:
    assert verify(KEY, wrap_v1(KEY, fields)) is None
    assert verify(KEY, wrap_v1(KEY, [1, "m-fund", "zhangwei", "", ""])) is not None  # the control
