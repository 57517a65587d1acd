"""Rendering is substitution from a fixed table: never evaluation, never a second pass."""

from __future__ import annotations

import pytest

from scrm.playbook import Material, Policy, TemplateError, render_material, render_template
from scrm.playbook.templates import check_template, variables_for

POLICY = Policy.model_validate(
    {
        "quiet_hours": "21:00-08:30",
        "opt_out_tag": "偏好/免打扰",
        "risk_disclosure": "理财非存款，产品有风险，投资须谨慎。",
    }
)


def material(**fields: object) -> Material:
    data: dict[str, object] = {"id": "m", "type": "text", "text": "x"}
    data.update(fields)
    return Material.model_validate(data)


def test_values_go_in_verbatim_and_are_not_rescanned() -> None:
    text = render_template(
        "{customer.name}您好，我是{manager.name}。",
        {"customer.name": "{manager.name}{__class__}", "manager.name": "李娜"},
    )
    assert text == "{manager.name}{__class__}您好，我是李娜。"


def test_literal_braces() -> None:
    assert render_template("{{活动}} {date.month}", {"date.month": "11月"}) == "{活动} 11月"


@pytest.mark.parametrize(
    "template",
    ["{__class__}", "{customer.name.__class__}", "{0}", "{customer.name!r}", "{customer.name:>10}", "{", "a}b"],
)
def test_anything_but_a_known_variable_is_refused(template: str) -> None:
    with pytest.raises(TemplateError):
        render_template(template, {"customer.name": "张先生"})
    assert check_template(template, ["private"])


def test_unknown_well_formed_variable() -> None:
    (problem,) = check_template("您好 {customer.__init__}", ["private"])
    assert str(problem).startswith("unknown variable {customer.__init__}; known:")
    assert problem.offset == 3


def test_missing_value_is_a_clear_error() -> None:
    with pytest.raises(TemplateError, match=r"no value for \{crm.product_name\}"):
        render_template("{crm.product_name}到期", {})


def test_group_messages_have_no_customer_variables() -> None:
    assert "customer.name" not in variables_for(["group"])
    assert "customer.name" in variables_for(["private"])
    assert variables_for(["group", "private"]) == {"manager.name", "date.today", "date.month"}


def test_risk_disclosure_is_appended() -> None:
    m = material(text="{customer.name}您好，专属理财已上架。\n", risk_disclosure=True)
    out = render_material(m, {"customer.name": "张先生"}, POLICY)
    assert out.text == "张先生您好，专属理财已上架。\n理财非存款，产品有风险，投资须谨慎。"


def test_link_titles_are_rendered_and_urls_left_alone() -> None:
    m = material(
        type="link",
        text=None,
        link={"title": "{date.month}理财规划", "desc": "给{customer.name}", "url": "https://a.example.com/x?y=1"},
    )
    out = render_material(m, {"date.month": "11月", "customer.name": "张先生"}, POLICY)
    assert out.link is not None
    assert (out.link.title, out.link.desc, out.link.url) == ("11月理财规划", "给张先生", "https://a.example.com/x?y=1")
    assert out.text is None


def test_placeholders_in_urls_are_refused() -> None:
    with pytest.raises(ValueError, match="placeholders"):
        material(type="link", link={"title": "t", "url": "https://a.example.com/{customer.name}"})


def test_disclosure_without_policy_text_fails_loudly() -> None:
    policy = POLICY.model_copy(update={"risk_disclosure": ""})
    with pytest.raises(TemplateError, match="risk disclosure"):
        render_material(material(risk_disclosure=True), {}, policy)
