"""Material templates: ``{customer.name}`` placeholders from a fixed table, nothing else.

Rendering is a scan-and-replace written here on purpose: ``str.format`` would let
``{customer.__class__}`` walk attributes, and a template engine would let content editors run
code. A placeholder is ``{word.word}`` naming an entry of :data:`VARIABLES`; ``{{`` and ``}}``
are literal braces; anything else in braces is an error at load time. Values go in verbatim
and are never scanned again, so a customer called ``{manager.name}`` stays just that.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date

from .issues import KeyPath
from .models import (
    TEXT_MAX_BYTES,
    LinkSpec,
    Material,
    MaterialType,
    MediaSpec,
    MiniProgramSpec,
    Policy,
    QuickReply,
    Use,
)


@dataclass(frozen=True)
class Variable:
    name: str
    description: str
    uses: frozenset[Use]
    example: str


_CUSTOMER: frozenset[Use] = frozenset({"private", "manager"})
_GROUP: frozenset[Use] = frozenset({"group", "manager"})
_ALL: frozenset[Use] = frozenset({"group", "private", "manager"})
# A moment is one post that every sender publishes for all their customers: only dates fit it.
_DATES: frozenset[Use] = frozenset({"group", "private", "manager", "moments"})


def _vars(*rows: tuple[str, str, frozenset[Use], str]) -> dict[str, Variable]:
    return {name: Variable(name, desc, uses, example) for name, desc, uses, example in rows}


VARIABLES: dict[str, Variable] = _vars(
    ("customer.name", "客户称呼: CRM name, else the WeCom name", _CUSTOMER, "张先生"),
    ("customer.remark", "the manager's remark on the customer", _CUSTOMER, "张伟-代发-城西支行"),
    ("manager.name", "客户经理 name", _ALL, "李娜"),
    ("group.name", "customer group name", _GROUP, "城西科技园代发福利群"),
    ("group.payday", "the group's payday (day of month)", _GROUP, "10"),
    ("date.today", "today, e.g. 11月23日", _DATES, "11月23日"),
    ("date.month", "this month, e.g. 11月", _DATES, "11月"),
    ("crm.payday", "发薪日 (day of month)", _CUSTOMER, "10"),
    ("crm.repayment_day", "还款日 (day of month)", _CUSTOMER, "15"),
    ("crm.product_name", "product in the event (maturity, purchase)", _CUSTOMER, "稳享90天"),
    ("crm.maturity_date", "到期日 of that product", _CUSTOMER, "12月1日"),
    ("crm.amount", "amount in the event (transfer, maturity)", _CUSTOMER, "50,000.00"),
    ("crm.tier", "客户等级", _CUSTOMER, "V3"),
    ("crm.risk_expiry", "风险评估 expiry date", _CUSTOMER, "2027年1月5日"),
)
"""Every variable a template may use, and where (group messages have no single customer)."""


def variables_for(uses: Iterable[Use]) -> frozenset[str]:
    """Variables usable by a material that may go to all of ``uses``."""
    names = frozenset(VARIABLES)
    for use in uses:
        names &= frozenset(n for n, v in VARIABLES.items() if use in v.uses)
    return names


def date_variables(day: date) -> dict[str, str]:
    """``date.*`` values for ``day`` in the way Chinese customers read dates (11月23日)."""
    return {"date.today": f"{day.month}月{day.day}日", "date.month": f"{day.month}月"}


class TemplateError(ValueError):
    """A template that does not parse, names an unknown variable, or lacks a value."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True)
class Placeholder:
    name: str
    offset: int


_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}\n]{0,40})\}|[{}]")
_NAME = re.compile(r"[a-z]+\.[a-z_]+")
_SYNTAX_HINT = "variables look like {customer.name}; write {{ and }} for literal braces"


def _scan(text: str) -> Iterator[str | Placeholder | TemplateError]:
    """Literal chunks, placeholders, and errors, in order; never raises."""
    pos = 0
    for m in _TOKEN.finditer(text):
        if m.start() > pos:
            yield text[pos : m.start()]
        token = m.group(0)
        if token in ("{{", "}}"):
            yield token[0]
        elif token in ("{", "}"):
            yield TemplateError(f"unmatched {token!r}; {_SYNTAX_HINT}", m.start())
        elif _NAME.fullmatch(m.group(1)):
            yield Placeholder(m.group(1), m.start())
        else:
            yield TemplateError(f"{token!r} is not a template variable; {_SYNTAX_HINT}", m.start())
        pos = m.end()
    if pos < len(text):
        yield text[pos:]


def check_template(text: str, uses: Iterable[Use]) -> list[TemplateError]:
    """Every problem in ``text`` for a material going to ``uses`` (empty list = fine)."""
    uses = list(uses)
    allowed = variables_for(uses)
    problems = []
    for part in _scan(text):
        if isinstance(part, TemplateError):
            problems.append(part)
        elif isinstance(part, Placeholder):
            if part.name not in VARIABLES:
                known = ", ".join("{" + n + "}" for n in VARIABLES)
                problems.append(TemplateError(f"unknown variable {{{part.name}}}; known: {known}", part.offset))
            elif part.name not in allowed:
                where = ", ".join(u for u in uses if u not in VARIABLES[part.name].uses)
                problems.append(
                    TemplateError(
                        f"{{{part.name}}} cannot be used in a {where} message "
                        f"(allowed here: {', '.join('{' + n + '}' for n in sorted(allowed))})",
                        part.offset,
                    )
                )
    return problems


def render_template(text: str, context: Mapping[str, str]) -> str:
    """Fill ``text`` from ``context`` (``{"customer.name": "张先生"}``); values go in verbatim."""
    out: list[str] = []
    for part in _scan(text):
        if isinstance(part, TemplateError):
            raise part
        if isinstance(part, Placeholder):
            if part.name not in VARIABLES:
                raise TemplateError(f"unknown variable {{{part.name}}}", part.offset)
            value = context.get(part.name)
            if value is None:
                raise TemplateError(f"no value for {{{part.name}}}", part.offset)
            out.append(str(value))
        else:
            out.append(part)
    return "".join(out)


def template_fields(material: Material) -> list[tuple[KeyPath, str]]:
    """The texts of ``material`` that are templates, with their key paths in the item."""
    link, mini, reply = material.link, material.miniprogram, material.quick_reply
    fields: list[tuple[KeyPath, str | None]] = [
        (("text",), material.text),
        (("link", "title"), link.title if link else None),
        (("link", "desc"), link.desc if link else None),
        (("miniprogram", "title"), mini.title if mini else None),
        (("quick_reply", "question"), reply.question if reply else None),
        (("quick_reply", "answer"), reply.answer if reply else None),
    ]
    return [(path, text) for path, text in fields if text]


@dataclass(frozen=True)
class RenderedMaterial:
    """A material ready to hand to the WeCom client: texts filled, disclosure appended."""

    id: str
    type: MaterialType
    text: str | None
    link: LinkSpec | None = None
    miniprogram: MiniProgramSpec | None = None
    image: MediaSpec | None = None
    file: MediaSpec | None = None
    quick_reply: QuickReply | None = None
    interest_tags: tuple[str, ...] = ()


def render_material(material: Material, context: Mapping[str, str], policy: Policy) -> RenderedMaterial:
    """Fill every template of ``material``; raises :class:`TemplateError` naming what is wrong.

    With ``risk_disclosure: true`` the policy's disclosure line is appended to the text (or
    becomes the text), so a wealth product never goes out without it.
    """
    text = render_template(material.text, context) if material.text else None
    if material.risk_disclosure:
        if not policy.risk_disclosure:
            raise TemplateError(f"material {material.id!r} needs a risk disclosure but policy has none")
        text = f"{text.rstrip()}\n{policy.risk_disclosure}" if text else policy.risk_disclosure
    if text is not None and len(text.encode()) > TEXT_MAX_BYTES:
        raise TemplateError(f"rendered text of {material.id!r} is over {TEXT_MAX_BYTES} bytes")
    link = material.link
    if link is not None:
        update = {"title": render_template(link.title, context), "desc": render_template(link.desc, context)}
        link = link.model_copy(update=update)
    mini = material.miniprogram
    if mini is not None:
        mini = mini.model_copy(update={"title": render_template(mini.title, context)})
    reply = material.quick_reply
    if reply is not None:
        reply = reply.model_copy(
            update={
                "question": render_template(reply.question, context),
                "answer": render_template(reply.answer, context),
            }
        )
    return RenderedMaterial(
        id=material.id,
        type=material.type,
        text=text,
        link=link,
        miniprogram=mini,
        image=material.image,
        file=material.file,
        quick_reply=reply,
        interest_tags=tuple(material.interest_tags),
    )
