"""What the tests of the service's web pages share: a port a browser can be told in advance,
where screenshots go, and coming back from one of WeCom's browser pages (the sandbox's)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

# Keep the screenshots of a run here (the README's come from such a run); else a test's tmp_path.
SCREENSHOTS_ENV = "SCREENSHOTS_DIR"


def free_port() -> int:
    """A loopback port free now: the service's ``public_url`` must name it before it starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def screenshots_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def back_from_wecom(page_url: str) -> str:
    """Open one of WeCom's pages (the sandbox's OAuth or web login, already told who is looking)
    and return where it sends the browser back: the path and query of the service's callback."""
    async with aiohttp.ClientSession() as browser, browser.get(page_url, allow_redirects=False) as wecom:
        assert wecom.status == 302, await wecom.text()
        back = urlsplit(wecom.headers["Location"])
    return f"{back.path}?{back.query}"
