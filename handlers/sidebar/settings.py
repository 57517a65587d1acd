"""``[sidebar]``: the chat toolbar page's sign-in, sessions and where its JS-SDK comes from."""

from __future__ import annotations

from pydantic import Field

from scrm.kernel.config import Section, Settings, section

# WeCom's OAuth page for members (snsapi_base: the userid, silently, inside the WeCom app).
WECOM_OAUTH_URL = "https://open.weixin.qq.com/connect/oauth2/authorize"
# WeCom's JS-SDK (@wecom/jssdk 2.4.4, MIT, its browser build `dist/wecom.global.prod.js`),
# vendored: the page loads nothing from outside the bank (it works only inside WeCom's webview).
WECOM_JSSDK_URL = "/sidebar/static/wecom-jssdk.js"
# The sandbox's harness in its place (scrm/sandbox/server_jssdk.py).
SANDBOX_JSSDK_PATH = "/sandbox/ww.js"


class SidebarSettings(Section):
    enabled: bool = True
    # Empty = the vendored JS-SDK, or the sandbox's harness when [wecom] api_base points at the
    # sandbox (`scrm serve --sandbox`, the tests).
    jssdk_url: str = ""
    oauth_url: str = ""
    # A manager keeps the toolbar open all day: a session ends after this long without a
    # request, and in any case after max_s (then OAuth runs again, silently inside WeCom).
    idle_timeout_s: int = Field(4 * 3600, ge=60)
    max_s: int = Field(12 * 3600, ge=300)
    # How much of the customer's history the panel shows.
    timeline_items: int = Field(15, ge=1, le=100)


def sidebar_settings(settings: Settings) -> SidebarSettings:
    """The ``[sidebar]`` section of ``settings``."""
    return section(settings, "sidebar", SidebarSettings)


def jssdk_url(settings: Settings) -> str:
    """Where the page loads ``ww`` from."""
    own = sidebar_settings(settings).jssdk_url
    if own:
        return own
    origin = settings.wecom.emulator_origin()
    return WECOM_JSSDK_URL if origin is None else origin + SANDBOX_JSSDK_PATH


def oauth_url(settings: Settings) -> str:
    """WeCom's OAuth authorize page (members' identity)."""
    own = sidebar_settings(settings).oauth_url
    if own:
        return own
    origin = settings.wecom.emulator_origin()
    return WECOM_OAUTH_URL if origin is None else origin + "/connect/oauth2/authorize"
