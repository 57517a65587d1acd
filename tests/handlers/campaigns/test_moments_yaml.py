"""A campaign's ``kind: moments`` channel as ``sop/campaigns/*.yaml`` declares it, and every way
it can be wrong, each reported on its own ``file:line``."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path

from handlers.campaigns.campaign import check_campaigns, load_campaigns
from scrm.playbook import load_playbook
from scrm.playbook.issues import PlaybookError
from tests.support.playbooks import APPROVED, SOP_MATERIALS, write_shipped_playbook

NOW = datetime(2026, 12, 1, tzinfo=UTC)
MATERIALS = SOP_MATERIALS + f"""\
- id: m-poster
  type: image
  channels: [moments]
  text: 年末刷卡季，{{date.month}}消费满额有礼。
  image: {{path: covers/card-q4.png}}
  {APPROVED}
- id: m-link
  type: link
  channels: [moments, private]
  text: 年末刷卡季活动细则。
  link: {{title: 年末刷卡季, url: "https://card.example.com/q4", cover: "https://card.example.com/q4.png"}}
  {APPROVED}
- id: m-product
  type: text
  channels: [moments]
  text: 稳享90天，年化参考3.1%。
  risk_level: R2
  product_category: wealth
  {APPROVED}
- id: m-mini
  type: miniprogram
  channels: [moments]
  text: 小程序领券。
  miniprogram: {{title: 领券, appid: wx3f2a9c7b1d4e6a80, page: pages/t/gift.html, cover: covers/topup.png}}
  {APPROVED}
"""
HEAD = """\
campaign: post
window: {start: 2026-12-01, end: 2026-12-10}
goal: {event: card.activated, within_days: 14}
"""


def write(tmp_path: Path, text: str) -> Path:
    sop, _ = write_shipped_playbook(tmp_path, materials=MATERIALS)
    (sop / "campaigns" / "post.yaml").write_text(text, encoding="utf-8")
    return sop


def problems(tmp_path: Path, text: str) -> list[str]:
    sop = write(tmp_path, text)
    return [str(i) for i in check_campaigns(sop, load_playbook(sop, tmp_path / "materials", today=NOW))]


def test_a_moments_channel_with_its_customer_tags(tmp_path: Path) -> None:
    sop = write(tmp_path, HEAD + """\
channels:
  - {id: post, kind: moments, on: 2026-12-02, at: "11:00", material: m-poster,
     customer_tags: [产品持有/信用卡]}
  - {id: link, kind: moments, on: 2026-12-03, at: "11:00", material: m-link}
""")
    (c,) = load_campaigns(sop, load_playbook(sop, tmp_path / "materials", today=NOW))
    assert [(ch.key, ch.kind, ch.day, ch.at, ch.material, ch.customer_tags) for ch in c.channels] == [
        ("post", "moments", date(2026, 12, 2), time(11), "m-poster", ("产品持有/信用卡",)),
        ("link", "moments", date(2026, 12, 3), time(11), "m-link", ())]


def test_a_material_must_be_declared_for_moments(tmp_path: Path) -> None:
    assert problems(tmp_path, HEAD + """\
channels:
  - {id: post, kind: moments, on: 2026-12-02, at: "11:00", material: t-text}
""") == ["sop/campaigns/post.yaml:5: channels[0].material: material 't-text' is not for moments sends "
         "(its channels: group, private)"]


def test_what_wecom_moments_and_a_public_post_cannot_take(tmp_path: Path) -> None:
    assert problems(tmp_path, HEAD + """\
channels:
  - {id: mini, kind: moments, on: 2026-12-02, at: "11:00", material: m-mini}
  - id: product
    kind: moments
    on: 2026-12-02
    at: "11:00"
    material: m-product
    customer_tags: [产品持有/信用卡, 兴趣/没有这个]
  - {id: night, kind: moments, on: 2026-12-02, at: "23:00", material: m-poster}
  - {id: off, kind: moments, on: 2026-12-12, at: "11:00", material: m-poster}
""") == [
        "sop/campaigns/post.yaml:5: channels[0].material: material 'm-mini' is a miniprogram; WeCom Moments take "
        "text with an image or a link (add_moment_task has no miniprogram)",
        "sop/campaigns/post.yaml:10: channels[1].material: material 'm-product' describes a product "
        "(risk_level): a Moments post cannot be kept from customers it is not suitable for",
        "sop/campaigns/post.yaml:11: channels[1].customer_tags[1]: unknown tag '兴趣/没有这个' "
        "(not in sop/tags.yaml)",
        "sop/campaigns/post.yaml:12: channels[2].at: falls in quiet hours 21:00-08:30",
        "sop/campaigns/post.yaml:13: channels[3].on: 2026-12-12 is outside the window 2026-12-01..2026-12-10"]


def test_a_moments_channel_in_a_split_campaign_and_tags_on_another_kind(tmp_path: Path) -> None:
    assert problems(tmp_path, HEAD + """\
channels:
  - {id: post, kind: moments, on: 2026-12-02, at: "11:00", material: m-poster}
holdout: 10
""") == ["sop/campaigns/post.yaml:5: channels[0].kind: a Moments post is seen by every customer of the managers "
         "who publish it: a campaign with variants or a holdout cannot have a moments channel"]
    sop = write(tmp_path / "b", HEAD + """\
channels:
  - {id: push, kind: private, on: 2026-12-02, at: "11:00", material: t-text, customer_tags: [产品持有/信用卡]}
""")
    try:
        load_campaigns(sop, load_playbook(sop, tmp_path / "b" / "materials", today=NOW))
    except PlaybookError as exc:
        assert [str(i) for i in exc.errors] == [
            "sop/campaigns/post.yaml:5: channels[0]: customer_tags belong to a moments channel only"]
    else:
        raise AssertionError("customer_tags on a private channel was accepted")


def test_a_moments_material_may_not_name_a_customer(tmp_path: Path) -> None:
    materials = MATERIALS + f"""\
- id: m-named
  type: text
  channels: [moments]
  text: "{{customer.name}}，年末刷卡季开始了。"
  {APPROVED}
"""
    sop, mat = write_shipped_playbook(tmp_path, materials=materials)
    try:
        load_playbook(sop, mat, today=NOW)
    except PlaybookError as exc:
        assert any("customer.name" in str(i) and "materials/tests.yaml" in str(i) for i in exc.errors), exc.errors
    else:
        raise AssertionError("a Moments material naming a customer was accepted")
