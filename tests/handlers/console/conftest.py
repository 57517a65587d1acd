"""Browser tests drive Debian's Chromium (``apt-get install chromium``; Playwright's own browser
downloads are not reachable here). A missing Chromium fails these tests loudly rather than
skipping them: the README's test command installs it."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if CHROMIUM is None:
        pytest.fail("Chromium not found: install Debian's package (apt-get install -y chromium) "
                    "or set CHROMIUM_PATH to its path", pytrace=False)
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "headless": True}
