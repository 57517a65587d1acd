"""A material's audience rule (``for_tags``): the same all/any/none as a path SOP's ``when:``,
checked the same way (every tag declared, each mistake on its ``file:line``)."""

from __future__ import annotations

from pathlib import Path

from .factory import errors, load

AUDIENCE = """\
    - id: hello
      type: text
      text: 您好，我是{manager.name}。
      approved: {by: 合规-王, at: 2026-01-05}
    - id: group-hello
      type: text
      channels: [group]
      text: 欢迎加入{group.name}
      approved: {by: 合规-王, at: 2026-01-05}
    - id: payroll-tip
      type: text
      text: 代发客户专享。
      for_tags:
        any: [产品持有/代发, 兴趣/理财]
        none: [%s]
      approved: {by: 合规-王, at: 2026-01-05}
    """


def test_for_tags_selects_customers_like_a_when(tmp_path: Path) -> None:
    pb = load(tmp_path, materials__base_yaml=AUDIENCE % "偏好/免打扰")
    tip, hello = pb.materials["payroll-tip"], pb.materials["hello"]
    customers = {"payroll": {"产品持有/代发"}, "reader": {"兴趣/理财", "渠道/代发开卡"},
                 "quiet": {"产品持有/代发", "偏好/免打扰"}, "none": set()}
    # any of 代发/理财, and not 免打扰 — written out here, not asked of the filter.
    expected = {name for name, tags in customers.items()
                if ("产品持有/代发" in tags or "兴趣/理财" in tags) and "偏好/免打扰" not in tags}
    assert {name for name, tags in customers.items() if tip.suits(tags)} == expected == {"payroll", "reader"}
    assert all(hello.suits(tags) for tags in customers.values())  # no rule: everyone


def test_unknown_tag_in_for_tags_names_file_line_and_key(tmp_path: Path) -> None:
    assert errors(tmp_path, materials__base_yaml=AUDIENCE % "偏好/免打搅") == [
        "materials/base.yaml:15: [2].for_tags.none[0]: unknown tag '偏好/免打搅': "
        "declare it in sop/tags.yaml; did you mean '偏好/免打扰'?"
    ]


def test_for_tags_is_not_for_group_materials(tmp_path: Path) -> None:
    text = AUDIENCE % "偏好/免打扰" + "  channels: [private, group]\n"
    found = errors(tmp_path, materials__base_yaml=text)
    assert len(found) == 1 and found[0].startswith("materials/base.yaml:"), found
    assert "for_tags filters a customer's tags and a group has none" in found[0]
