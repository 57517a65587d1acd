"""The customer's own preference page: ``GET/POST /prefs/{token}``, which kinds of marketing they want.

The link is the customer's alone: the token is AES-SIV of ``prefs \\0 external_userid`` under a
key derived from the corp's WeCom secrets (as radar links are made), so it is opaque, cannot be
made or altered without the key, and is the same every time it is minted. The token in the path
is also what a cross-site POST would have to know, so the form needs no other CSRF token.

The page is one small mobile form in Chinese with no script or outside resource. Saving records
every category as the customer left it (``source: preference``); the latest statement wins over
older ones and over the CRM's map (``handlers.compliance.consent``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import logging
import secrets
from typing import TYPE_CHECKING

from aiohttp import web
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.compliance.consent import consent_rows, merged_consents, record_consent
from handlers.contacts.api import Customer
from handlers.crm.api import Binding, CrmCustomer
from scrm.kernel.config import Settings
from scrm.playbook import Playbook

if TYPE_CHECKING:
    from scrm.kernel.service import Runtime

log = logging.getLogger("handlers.compliance.prefs")

PATH_PREFIX = "/prefs/"
MAX_TOKEN_CHARS = 400
_PURPOSE = b"prefs\x00"
_HKDF_INFO = b"scrm consent preference link v1 aes-siv"
_DEV_KEY = secrets.token_bytes(64)

#: How the page names each category (a category without a name shows as written).
CATEGORY_NAMES = {"wealth": "理财产品", "loans": "贷款", "cards": "信用卡", "insurance": "保险", "events": "活动与沙龙"}


def _key(settings: Settings) -> bytes:
    secret = settings.wecom.secret.get_secret_value() + settings.wecom.encoding_aes_key.get_secret_value()
    if not secret:  # dev setups: links die with the process
        return _DEV_KEY
    base = hmac.new(secret.encode(), b"scrm consent preference key", hashlib.sha256).digest()
    return HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=_HKDF_INFO).derive(base)


def prefs_token(settings: Settings, external_userid: str) -> str:
    """The customer's preference-page token (deterministic)."""
    sealed = AESSIV(_key(settings)).encrypt(_PURPOSE + external_userid.encode(), None)
    return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()


def prefs_link(settings: Settings, external_userid: str) -> str:
    """The customer's preference page, to send them (e.g. at the foot of a message)."""
    return settings.server.public_url.rstrip("/") + PATH_PREFIX + prefs_token(settings, external_userid)


def customer_of(settings: Settings, token: str) -> str | None:
    """The external userid a valid token names; None for anything else."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    try:
        sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        plain = AESSIV(_key(settings)).decrypt(sealed, None)
    except (binascii.Error, ValueError, InvalidTag):
        return None
    if not plain.startswith(_PURPOSE):
        return None
    return plain[len(_PURPOSE):].decode(errors="replace") or None


async def _crm_record(db: AsyncSession, external_userid: str) -> CrmCustomer | None:
    """The customer's CRM record (own crm_id first, else a binding's), for the CRM's consent map."""
    crm_id = await db.scalar(select(Customer.crm_id).where(Customer.external_userid == external_userid))
    if not crm_id:
        crm_id = await db.scalar(select(Binding.crm_id).where(Binding.external_userid == external_userid)
                                 .order_by(Binding.bound_at.desc()).limit(1))
    return await db.get(CrmCustomer, crm_id) if crm_id else None


PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>营销信息偏好</title>
<style>
body{{font-family:-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;padding:16px;
background:#f5f6f8;color:#222}}
h1{{font-size:20px;margin:8px 0 4px}} p{{color:#555;font-size:14px;line-height:1.6}}
form{{background:#fff;border-radius:8px;padding:8px 16px}}
label{{display:flex;justify-content:space-between;align-items:center;padding:14px 0;
border-bottom:1px solid #eee;font-size:16px}}
label:last-of-type{{border-bottom:0}} input{{width:22px;height:22px}}
button{{width:100%;margin:16px 0 8px;padding:12px;font-size:16px;border:0;border-radius:6px;
background:#1677ff;color:#fff}}
.saved{{background:#e8f5e9;color:#256029;padding:10px 12px;border-radius:6px;font-size:14px}}
</style></head><body>
<h1>营销信息偏好</h1>
<p>请选择您愿意接收的营销信息类别。取消勾选后，我们将不再向您推送该类信息；服务通知不受影响。</p>
{saved}
<form method="post">
{rows}
<button type="submit">保存</button>
</form>
</body></html>
"""


def render_page(categories: list[str], consents: dict[str, bool], default: bool, *, saved: bool) -> str:
    rows = "\n".join(
        f'<label>{html.escape(CATEGORY_NAMES.get(c, c))}'
        f'<input type="checkbox" name="c_{html.escape(c)}"{" checked" if consents.get(c, default) else ""}></label>'
        for c in categories)
    note = '<div class="saved">已保存，感谢您的反馈。</div>' if saved else ""
    return PAGE.format(saved=note, rows=rows)


class PrefsView:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def _refuse(self, status: int, text: str) -> web.Response:
        return web.Response(status=status, text=text, content_type="text/plain", charset="utf-8")

    async def handle(self, request: web.Request) -> web.Response:
        ext = customer_of(self.runtime.settings, request.match_info["token"])
        if ext is None:
            return self._refuse(404, "链接无效")
        playbook: Playbook | None = self.runtime.playbook.current
        if playbook is None:
            return self._refuse(503, "服务暂不可用，请稍后再试")
        rules = playbook.suitability
        now = self.runtime.clock.now()
        saved = False
        if request.method == "POST":
            form = await request.post()
            unknown = [k for k in form if not (k.startswith("c_") and k[2:] in rules.categories)]
            if unknown:
                return self._refuse(400, "表单内容有误")
            async with self.runtime.sessions() as db, db.begin():
                for category in rules.categories:
                    await record_consent(db, ext, category, f"c_{category}" in form, source="preference", at=now)
            saved = True
        async with self.runtime.sessions() as db:
            record = await _crm_record(db, ext)
            said = (await consent_rows(db, [ext])).get(ext, {})
            consents = merged_consents(dict(record.attributes or {}) if record else {},
                                       record.updated_at if record else None, said, rules)
        page = render_page(list(rules.categories), consents, rules.consent_default, saved=saved)
        return web.Response(text=page, content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                                     "X-Frame-Options": "DENY"})


def install_prefs(app: web.Application, runtime: Runtime) -> None:
    """Add ``GET/POST /prefs/{token}`` to the service app."""
    view = PrefsView(runtime)
    app.router.add_get(PATH_PREFIX + "{token}", view.handle)
    app.router.add_post(PATH_PREFIX + "{token}", view.handle)
