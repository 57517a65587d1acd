"""The corp's private keys by public-key version: the random key of each archived message is
RSA-encrypted (PKCS#1 v1.5) with the public key of its ``publickey_ver``. The keys are secrets:
no message here ever contains one."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from handlers.compliance.archive.source import EncryptedChat


class ArchiveKeyError(Exception):
    """A message cannot be decrypted with the configured keys (the intake stops; nothing moves)."""


class PrivateKeys:
    def __init__(self, pems: Mapping[int, str]) -> None:
        self._keys: dict[int, RSAPrivateKey] = {}
        for version, pem in pems.items():
            try:
                key = load_pem_private_key(pem.encode(), password=None)
            except (ValueError, TypeError):
                key = None
            if not isinstance(key, RSAPrivateKey):
                raise ArchiveKeyError(f"[compliance] archive_private_keys.{version}: not a PEM RSA private key "
                                      "without a passphrase")
            self._keys[int(version)] = key

    @property
    def versions(self) -> list[int]:
        return sorted(self._keys)

    def random_key(self, chat: EncryptedChat) -> bytes:
        """The message's random key, or an :class:`ArchiveKeyError` saying which version is missing."""
        key = self._keys.get(chat.publickey_ver)
        if key is None:
            have = ", ".join(map(str, self.versions)) or "none"
            raise ArchiveKeyError(f"archive message seq {chat.seq} ({chat.msgid}) is encrypted with public key "
                                  f"version {chat.publickey_ver}, and [compliance] archive_private_keys has version(s) "
                                  f"{have}: add the private key of version {chat.publickey_ver}")
        try:
            return key.decrypt(base64.b64decode(chat.encrypt_random_key), padding.PKCS1v15())
        except (ValueError, binascii.Error):
            raise wrong_key(chat) from None


def wrong_key(chat: EncryptedChat) -> ArchiveKeyError:
    return ArchiveKeyError(f"archive message seq {chat.seq} ({chat.msgid}) does not decrypt with private key version "
                           f"{chat.publickey_ver}: is it the pair of the public key uploaded as version "
                           f"{chat.publickey_ver}?")
