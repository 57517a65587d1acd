"""WeCom callback crypto (WXBizMsgCrypt), pure and strict.

The AES primitive and PKCS#7 encoder come from wechatpy (pinned); this wrapper adds what the
callback path needs and wechatpy leaves out: constant-time signature compares, strict framing
checks (padding, declared length, UTF-8), a typed error carrying the official sample-library
code, and no XML parsing at all (the caller parses with hardened lxml, ``events.parse_xml``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct

from wechatpy.crypto.base import WeChatCipher
from wechatpy.crypto.pkcs7 import PKCS7Encoder

# Return codes of the official sample libraries (PROTOCOL.md §1).
VALIDATE_SIGNATURE_ERROR = -40001
PARSE_XML_ERROR = -40002
ILLEGAL_AES_KEY = -40004
VALIDATE_CORPID_ERROR = -40005
DECRYPT_AES_ERROR = -40007
ILLEGAL_BUFFER = -40008
DECODE_BASE64_ERROR = -40010

_BLOCK = 32


class CryptoError(Exception):
    """A callback failed verification or decryption; ``code`` is the official sample code."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{reason} ({code})")
        self.code = code
        self.reason = reason


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """sha1 over the lexicographically sorted four strings, lowercase hex."""
    parts = sorted([token, timestamp, nonce, encrypted])
    return hashlib.sha1("".join(parts).encode("utf-8")).hexdigest()


class WeComCrypto:
    """Sign, verify, encrypt and decrypt callbacks for one (token, EncodingAESKey, receive id)."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        self.token = token
        self.encoding_aes_key = encoding_aes_key
        self.receive_id = receive_id
        try:
            key = base64.b64decode(self.encoding_aes_key + "=", validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(self.encoding_aes_key) != 43 or len(key) != 32:
            raise CryptoError(ILLEGAL_AES_KEY, "EncodingAESKey must be 43 base64 characters")
        self.key = key

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> None:
        """Raise CryptoError(-40001) unless the signature matches, compared in constant time."""
        expected = signature(self.token, timestamp, nonce, encrypted)
        if not hmac.compare_digest(expected.encode("ascii"), msg_signature.lower().encode("ascii", "replace")):
            raise CryptoError(VALIDATE_SIGNATURE_ERROR, "signature mismatch")

    def decrypt(self, encrypted: str) -> str:
        """Decrypt one ``Encrypt`` payload; checks padding, framing, UTF-8 and the receive id."""
        try:
            raw = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            raise CryptoError(DECODE_BASE64_ERROR, "payload is not valid base64") from None
        if not raw or len(raw) % 16:
            raise CryptoError(DECRYPT_AES_ERROR, "ciphertext length is not a multiple of the AES block")
        plain = WeChatCipher(self.key).decrypt(raw)
        pad = plain[-1]
        if not 1 <= pad <= _BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise CryptoError(ILLEGAL_BUFFER, "bad PKCS#7 padding")
        content = plain[16:-pad]
        if len(content) < 4:
            raise CryptoError(ILLEGAL_BUFFER, "decrypted buffer too short")
        (length,) = struct.unpack(">I", content[:4])
        if length > len(content) - 4:
            raise CryptoError(ILLEGAL_BUFFER, "declared message length exceeds the buffer")
        msg, receive_id = content[4 : 4 + length], content[4 + length :]
        if not hmac.compare_digest(receive_id, self.receive_id.encode("utf-8")):
            raise CryptoError(VALIDATE_CORPID_ERROR, "receive id does not match the corp id")
        try:
            return bytes(msg).decode("utf-8")
        except UnicodeDecodeError:
            raise CryptoError(ILLEGAL_BUFFER, "message is not valid UTF-8") from None

    def verify_and_decrypt(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> str:
        self.verify(msg_signature, timestamp, nonce, encrypted)
        return self.decrypt(encrypted)

    def encrypt(self, message: str, random_prefix: bytes | None = None) -> str:
        """Encrypt like WeCom does (used by the sandbox, the callback driver and tests)."""
        prefix = random_prefix if random_prefix is not None else str(secrets.randbelow(9 * 10**15) + 10**15).encode()
        if len(prefix) != 16:
            raise ValueError("random prefix must be 16 bytes")
        body = message.encode("utf-8")
        plain = prefix + struct.pack(">I", len(body)) + body + self.receive_id.encode("utf-8")
        padded = PKCS7Encoder.encode(plain)
        return base64.b64encode(WeChatCipher(self.key).encrypt(padded)).decode("ascii")

    def sign(self, timestamp: str, nonce: str, encrypted: str) -> str:
        return signature(self.token, timestamp, nonce, encrypted)

    def envelope(self, message: str, timestamp: str, nonce: str, agent_id: str | None = None) -> tuple[str, str]:
        """Build a POST body as WeCom sends it; returns (xml_body, msg_signature)."""
        enc = self.encrypt(message)
        agent = f"<AgentID><![CDATA[{agent_id}]]></AgentID>" if agent_id else ""
        body = (f"<xml><ToUserName><![CDATA[{self.receive_id}]]></ToUserName>{agent}"
                f"<Encrypt><![CDATA[{enc}]]></Encrypt></xml>")
        return body, self.sign(timestamp, nonce, enc)
