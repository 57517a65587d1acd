"""Bad channels/groups YAML: every error names file:line and key; the service refuses to start
with it, and a reload keeps the last good version."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from scrm.kernel.clock import FakeClock
from scrm.main import build_runtime
from scrm.playbook import PlaybookError, load_playbook
from scrm.playbook.holder import PlaybookLoadError
from tests.support.playbooks import CHANNELS, GROUPS, write_playbook
from tests.support.stack import sandbox_settings

BAD_CHANNELS = CHANNELS + """\
  this-channel-key-is-far-too-long-for-wecom:
    name: 太长
    managers: [zhangwei]
  no-manager:
    name: 没人管
    tags: [渠道/不存在]
  bad-welcome:
    name: 欢迎语写错
    managers: [lina]
    welcome: no-such-material
"""

BAD_GROUPS = (GROUPS.replace("member_cap: 5\n", "member_cap: lots\n")
              .replace('classify: {name: "快闪|秒杀"}', 'classify: {name: "快闪(("}')
              .replace("qr_pool: {size: 2}", "qr_pool: {size: 9}", 1))


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_errors_name_file_line_and_key(tmp_path: Path) -> None:
    sop, mat = write_playbook(tmp_path, channels=BAD_CHANNELS, groups=BAD_GROUPS)
    with pytest.raises(PlaybookError) as err:
        load_playbook(sop, mat, today=date(2026, 11, 2))
    lines = [str(e) for e in err.value.errors]
    long_key = _line_of(BAD_CHANNELS, "this-channel-key-is-far-too-long")
    assert any(x.startswith(f"sop/channels.yaml:{long_key}: channels") and "30" in x for x in lines), lines
    assert any(x.startswith(f"sop/channels.yaml:{_line_of(BAD_CHANNELS, 'no-manager:')}: channels.no-manager")
               and "managers" in x for x in lines), lines
    assert any("channels.bad-welcome.welcome" in x and "no-such-material" in x for x in lines), lines
    cap = _line_of(BAD_GROUPS, "member_cap: lots")
    assert any(x.startswith(f"sop/groups.yaml:{cap}: group_types.elderly.member_cap") for x in lines), lines
    regex = _line_of(BAD_GROUPS, "快闪((")
    assert any(x.startswith(f"sop/groups.yaml:{regex}: group_types.flash_sale.classify") and "regular expression"
               in x for x in lines), lines
    size = _line_of(BAD_GROUPS, "size: 9")
    assert any(x.startswith(f"sop/groups.yaml:{size}: group_types.payroll.qr_pool.size") for x in lines), lines


def test_service_refuses_to_start_and_reload_keeps_last_good(sqlite_url: str, tmp_path: Path) -> None:
    sop, mat = write_playbook(tmp_path, channels=BAD_CHANNELS)
    settings = sandbox_settings(sqlite_url, "http://127.0.0.1:9", sop, mat)
    with pytest.raises(PlaybookLoadError) as err:
        build_runtime(settings, clock=FakeClock())
    assert f"sop/channels.yaml:{_line_of(BAD_CHANNELS, 'this-channel-key')}: channels" in str(err.value)

    write_playbook(tmp_path)  # fixed: the service starts
    runtime = build_runtime(settings, clock=FakeClock())
    good = runtime.playbook.current
    assert "wealth-salon" in good.channels
    write_playbook(tmp_path, groups=BAD_GROUPS)  # broken again while running
    version = runtime.playbook.version
    outcome = runtime.playbook.reload()
    assert not outcome.applied and outcome.version == version and runtime.playbook.reload_failed
    assert any("sop/groups.yaml" in e and "group_types.elderly.member_cap" in e for e in outcome.errors)
    assert runtime.playbook.current is good  # the last good version keeps running
    assert runtime.handler_context()["playbook"] is good
