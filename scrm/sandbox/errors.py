"""WeCom error codes the sandbox returns, and the exception that carries one to the reply.

Codes come from PROTOCOL.md §8. Where WeCom's code for a case is not documented the sandbox
uses 40058 (invalid parameter) with an errmsg naming the field, so clients fail loudly instead
of retrying; those choices are listed in ``SandboxServer``'s docstring.
"""

from __future__ import annotations

from typing import Any

OK = 0
SYSTEM_BUSY = -1
INVALID_SECRET = 40001
INVALID_CORPID = 40013
INVALID_MEDIA_TYPE = 40004
INVALID_FILE_SIZE = 40006
INVALID_MEDIA_ID = 40007
INVALID_ACCESS_TOKEN = 40014
INVALID_CODE = 40029
INVALID_AGENTID = 40056
INVALID_PARAMETER = 40058
INVALID_TAGID = 40068
TAG_NAME_EXISTS = 40071
INVALID_EXTERNAL_USERID = 40096
MISSING_ACCESS_TOKEN = 41001
WELCOME_CODE_USED = 41051
ACCESS_TOKEN_EXPIRED = 42001
DATA_FORMAT_ERROR = 47001
FREQ_LIMIT = 45009
CONCURRENCY_LIMIT = 45033
REDIRECT_DOMAIN_MISMATCH = 50001
NO_PRIVILEGE = 60011
USERID_NOT_FOUND = 60111
INVALID_PARTY = 60123
ALL_RECIPIENTS_INVALID = 81013
NOT_EXTERNAL_CONTACT = 84061

#: Short English errmsg per code, in WeCom's lowercase style.
MESSAGES: dict[int, str] = {
    OK: "ok",
    SYSTEM_BUSY: "system busy",
    INVALID_SECRET: "invalid credential",
    INVALID_CORPID: "invalid corpid",
    INVALID_MEDIA_TYPE: "invalid media type",
    INVALID_FILE_SIZE: "invalid file size",
    INVALID_MEDIA_ID: "invalid media_id",
    INVALID_ACCESS_TOKEN: "invalid access_token",
    INVALID_CODE: "invalid code",
    INVALID_AGENTID: "invalid agentid",
    INVALID_PARAMETER: "invalid parameter",
    INVALID_TAGID: "invalid tagid",
    TAG_NAME_EXISTS: "tag name already exists",
    INVALID_EXTERNAL_USERID: "invalid external userid",
    MISSING_ACCESS_TOKEN: "access_token missing",
    WELCOME_CODE_USED: "externaluser has started chatting",
    ACCESS_TOKEN_EXPIRED: "access_token expired",
    DATA_FORMAT_ERROR: "data format error",
    FREQ_LIMIT: "api freq out of limit",
    CONCURRENCY_LIMIT: "api concurrent out of limit",
    REDIRECT_DOMAIN_MISMATCH: "redirect uri domain mismatch",
    NO_PRIVILEGE: "no privilege to access/modify contact/party/agent",
    USERID_NOT_FOUND: "userid not found",
    INVALID_PARTY: "invalid party id",
    ALL_RECIPIENTS_INVALID: "user & party & tag all invalid",
    NOT_EXTERNAL_CONTACT: "not external contact",
}


def errmsg(code: int, detail: str = "") -> str:
    """WeCom-shaped errmsg: the base text, an optional detail, and the ``more info`` hint."""
    base = MESSAGES.get(code, "error")
    if code == OK:
        return base
    text = f"{base}: {detail}" if detail else base
    return f"{text}, hint: [sandbox], more info at https://open.work.weixin.qq.com/devtool/query?e={code}"


class ApiError(Exception):
    """Raised by a route to reply ``{"errcode": code, "errmsg": ...}`` (plus ``extra`` fields)."""

    def __init__(self, code: int, detail: str = "", extra: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.extra = extra or {}

    def reply(self) -> dict[str, Any]:
        return {"errcode": self.code, "errmsg": errmsg(self.code, self.detail), **self.extra}


def invalid(detail: str) -> ApiError:
    """A 40058 with a message naming what was wrong (the common parameter-validation error)."""
    return ApiError(INVALID_PARAMETER, detail)
