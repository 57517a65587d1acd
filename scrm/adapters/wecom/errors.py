"""Errors raised by the WeCom API client, classified for the outbox.

The one question the outbox must answer after a failure is *may the call have taken effect?*
Every error here answers it through two attributes:

``sent``
    the request bytes may have reached WeCom. Only :class:`AmbiguousCallError` is raised with
    ``sent=True`` and no reply; a :class:`WeComError` was also sent but WeCom told us it failed.
``retry_safe``
    repeating the call later cannot duplicate an effect (nothing was sent, or WeCom rejected
    the call before acting: system busy, rate limited, bad token).

Messages never contain secrets: URLs are passed through :func:`mask_secrets` first.
"""

from __future__ import annotations

import re
from typing import ClassVar, Final


class ErrCode:
    """WeCom errcodes the service branches on (PROTOCOL.md §8)."""

    OK: Final = 0
    SYSTEM_BUSY: Final = -1
    INVALID_SECRET: Final = 40001
    INVALID_ACCESS_TOKEN: Final = 40014
    INVALID_CODE: Final = 40029
    INVALID_PARAMETER: Final = 40058
    INVALID_TAG_ID: Final = 40068
    INVALID_EXTERNAL_USERID: Final = 40096
    MISSING_ACCESS_TOKEN: Final = 41001
    WELCOME_CODE_USED: Final = 41051  # "externaluser has started chatting": already delivered
    ACCESS_TOKEN_EXPIRED: Final = 42001
    FREQ_OUT_OF_LIMIT: Final = 45009
    CONCURRENCY_OUT_OF_LIMIT: Final = 45033
    API_FORBIDDEN: Final = 48002
    REDIRECT_DOMAIN_MISMATCH: Final = 50001
    NO_PRIVILEGE: Final = 60011
    IP_NOT_WHITELISTED: Final = 60020
    USERID_NOT_FOUND: Final = 60111
    INVALID_PARTY: Final = 60123
    ALL_RECIPIENTS_INVALID: Final = 81013
    TOO_MANY_VISIBLE_USERS: Final = 81017
    NOT_EXTERNAL_CONTACT: Final = 84061
    NOT_EXTERNAL_GROUP_CHAT: Final = 90501


TOKEN_ERRCODES: Final = frozenset(
    {ErrCode.INVALID_ACCESS_TOKEN, ErrCode.ACCESS_TOKEN_EXPIRED, ErrCode.MISSING_ACCESS_TOKEN}
)
RATE_LIMIT_ERRCODES: Final = frozenset({ErrCode.FREQ_OUT_OF_LIMIT, ErrCode.CONCURRENCY_OUT_OF_LIMIT})
RETRYABLE_ERRCODES: Final = frozenset({ErrCode.SYSTEM_BUSY})

_SECRET_PARAM = re.compile(r"(access_token|corpsecret)=[^&\s'\"]*", re.IGNORECASE)


def mask_secrets(text: str) -> str:
    """Replace the values of ``access_token=`` and ``corpsecret=`` in any text (URLs, errors)."""
    return _SECRET_PARAM.sub(r"\1=***", text)


def is_token_error(errcode: int) -> bool:
    """The access token was rejected: refresh it and retry the call once."""
    return errcode in TOKEN_ERRCODES


def is_rate_limited(errcode: int) -> bool:
    """WeCom throttled the call (45009 frequency, 45033 concurrency); it did not take effect."""
    return errcode in RATE_LIMIT_ERRCODES


def is_retryable(errcode: int) -> bool:
    """WeCom was busy (-1) and asks the caller to try again."""
    return errcode in RETRYABLE_ERRCODES


class WeComClientError(Exception):
    """Root of everything the WeCom client raises."""

    #: The request may have reached WeCom.
    sent: ClassVar[bool] = True
    _retry_safe: ClassVar[bool] = False

    def __init__(self, message: str, *, api: str) -> None:
        super().__init__(mask_secrets(message))
        self.api = api

    @property
    def retry_safe(self) -> bool:
        """Repeating the call later cannot duplicate an effect."""
        return self._retry_safe

    @property
    def may_have_taken_effect(self) -> bool:
        """True only when the outcome is unknown; the outbox must reconcile, not resend."""
        return False


class WeComError(WeComClientError):
    """WeCom answered with a non-zero ``errcode``: the call was received and refused."""

    def __init__(self, errcode: int, errmsg: str, api: str) -> None:
        self.errcode = errcode
        self.errmsg = mask_secrets(errmsg)
        super().__init__(f"{api}: errcode {errcode}: {self.errmsg}", api=api)

    @property
    def retry_safe(self) -> bool:
        # WeCom refused before acting for these codes; anything else is a business answer.
        return is_retryable(self.errcode) or is_rate_limited(self.errcode) or is_token_error(self.errcode)


class SystemBusyError(WeComError):
    """errcode -1 (系统繁忙) still failing after the client's bounded retries."""


class RateLimitedError(WeComError):
    """errcode 45009/45033 still failing after the client backed off."""


class AccessTokenError(WeComError):
    """The token was rejected again right after a refresh (40014/42001/41001)."""


_ERROR_CLASSES: dict[int, type[WeComError]] = {
    ErrCode.SYSTEM_BUSY: SystemBusyError,
    ErrCode.FREQ_OUT_OF_LIMIT: RateLimitedError,
    ErrCode.CONCURRENCY_OUT_OF_LIMIT: RateLimitedError,
    ErrCode.INVALID_ACCESS_TOKEN: AccessTokenError,
    ErrCode.ACCESS_TOKEN_EXPIRED: AccessTokenError,
    ErrCode.MISSING_ACCESS_TOKEN: AccessTokenError,
}


def error_for(errcode: int, errmsg: str, api: str) -> WeComError:
    """The most specific :class:`WeComError` subclass for an errcode (a table, not a chain of ifs)."""
    return _ERROR_CLASSES.get(errcode, WeComError)(errcode, errmsg, api)


class ConnectionFailedError(WeComClientError):
    """Nothing was sent (connection refused, DNS, TLS, connect timeout, no token): safe to retry."""

    sent = False
    _retry_safe = True


class TokenUnavailableError(ConnectionFailedError):
    """No access token could be had, so the call was not sent: gettoken unreachable or refused
    (``errcode`` set, e.g. 40001 for a wrong secret), or the token store is down.

    Retry-safe on purpose: a wrong secret is fixed in config, and the actions waiting on it
    should go out afterwards rather than be failed. Messages are sanitised: a database error's
    text would include the bound token.
    """

    def __init__(self, message: str, *, api: str, errcode: int | None = None) -> None:
        super().__init__(message, api=api)
        self.errcode = errcode


class AmbiguousCallError(WeComClientError):
    """The request was sent but no usable reply was read (timeout, dropped connection, 5xx).

    The call **may have taken effect**. The client never retries these; the outbox marks the
    action ``unknown`` and reconciles (e.g. get_groupmsg_send_result) instead of resending.
    """

    sent = True

    def __init__(self, message: str, *, api: str, elapsed_ms: float = 0.0) -> None:
        super().__init__(message, api=api)
        self.elapsed_ms = elapsed_ms

    @property
    def may_have_taken_effect(self) -> bool:
        return True


class WeComHTTPError(WeComClientError):
    """An HTTP 4xx from WeCom or a proxy (WeCom itself answers errors with HTTP 200)."""

    sent = True

    def __init__(self, status: int, *, api: str) -> None:
        super().__init__(f"{api}: unexpected HTTP status {status}", api=api)
        self.status = status


class LocalRateLimitError(WeComClientError):
    """Our own limiter would hold the call longer than allowed (e.g. a member's 1,000/h app
    message budget is spent). Nothing was sent; retry after ``retry_after_s``."""

    sent = False
    _retry_safe = True

    def __init__(self, message: str, *, api: str, retry_after_s: float) -> None:
        super().__init__(message, api=api)
        self.retry_after_s = retry_after_s
