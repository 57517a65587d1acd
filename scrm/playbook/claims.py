"""Banned claims: words and patterns no material may say (sop/compliance/claims.yaml).

The compliance team keeps the list (保本, 稳赚, 无风险, promised yields …) in a folder it owns.
Every customer-facing text of every material is searched: ``text``, the link's title and
description, the mini program's title and a quick reply's answer. A quick reply's *question* is
what a customer asks ("这个产品保本吗？"), so it is not searched; neither is the policy's risk
disclosure, which is the compliance team's own mandatory wording and says "不保本" on purpose.
An ``allow`` phrase (不保本, 非保本) that contains a hit excuses it: a disclosure is not a promise.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

from pydantic import Field, model_validator

from .fields import Regex, Strict
from .issues import KeyPath
from .models import Material

CLAIMS_FILE = "compliance/claims.yaml"
"""Where the list lives, relative to sop/."""


class Claim(Strict):
    """One banned word (matched ignoring case) or regular expression, with why it is banned."""

    word: str | None = Field(None, min_length=1)
    pattern: Regex | None = Field(None, min_length=1, description="a Python regular expression")
    label: str = Field(min_length=1, description="why it is banned, shown with every hit")
    allow: list[str] = Field(default_factory=list,
                             description="phrases that contain a hit but are no claim, e.g. 不保本")

    @model_validator(mode="after")
    def _one(self) -> Claim:
        if (self.word is None) == (self.pattern is None):
            raise ValueError("give exactly one of word or pattern")
        return self

    @cached_property
    def regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern) if self.pattern is not None else re.compile(re.escape(self.word or ""), re.I)

    def hits(self, text: str) -> Iterator[tuple[int, str]]:
        """(offset, what was found) for each hit in ``text`` that no ``allow`` phrase covers."""
        excused = [(m.start(), m.end()) for phrase in self.allow
                   for m in re.finditer(re.escape(phrase), text, re.I)]
        for m in self.regex.finditer(text):
            if m.end() > m.start() and not any(s <= m.start() and m.end() <= e for s, e in excused):
                yield m.start(), m.group()


class ClaimsFile(Strict):
    """sop/compliance/claims.yaml."""

    approval_needs_hash: bool = Field(
        True, description="an approval without the content hash `scrm materials approve` writes does not count; "
                          "false while migrating (each one is then a warning)")
    claims: list[Claim] = Field(default_factory=list)



@dataclass(frozen=True)
class ClaimHit:
    """A banned claim found at ``path`` (inside the material), ``offset`` characters into its text."""

    path: KeyPath
    text: str
    offset: int
    found: str
    label: str

    @property
    def message(self) -> str:
        return f"banned claim {self.found!r} ({self.label}; sop/{CLAIMS_FILE})"


def searched_texts(material: Material) -> list[tuple[KeyPath, str]]:
    """The customer-facing texts of ``material``, with their key paths in the item."""
    link, mini, reply = material.link, material.miniprogram, material.quick_reply
    fields: list[tuple[KeyPath, str | None]] = [
        (("text",), material.text),
        (("link", "title"), link.title if link else None),
        (("link", "desc"), link.desc if link else None),
        (("miniprogram", "title"), mini.title if mini else None),
        (("quick_reply", "answer"), reply.answer if reply else None),
    ]
    return [(path, text) for path, text in fields if text]


def claim_hits(material: Material, rules: ClaimsFile) -> list[ClaimHit]:
    """Every banned claim in ``material``, in field then text order."""
    out: list[ClaimHit] = []
    for path, text in searched_texts(material):
        found = [(offset, what, claim.label) for claim in rules.claims for offset, what in claim.hits(text)]
        out += [ClaimHit(path, text, offset, what, label) for offset, what, label in sorted(found)]
    return out
