"""A scanner for the plain WeCom document: ``<xml>`` holding leaf elements only.

Every callback envelope and most events are such a document: ``<xml>`` and, inside it, elements
that each hold one CDATA section, plain text or nothing, separated by whitespace at most. For
them lxml's tree (building a node per element, then reading it back) was most of a callback's
parse. :func:`scan_plain` reads them with a regular expression per element instead and answers ``None`` for
anything else, which then goes through the full, hardened parse (``events.parse_xml_tree``): a DOCTYPE
or an entity reference, a comment, an attribute, an XML declaration, a nested or repeated
element, an empty-element tag, a carriage return (XML rewrites it), a character XML forbids.
So nothing hostile is decided here: such input is never plain, and the full parse refuses it.

For a document it accepts, the result equals the full parse's (the property test
``tests/adapters/wecom/test_plainxml.py`` checks it on generated and mutated documents).
A leaf module (stdlib only).
"""

from __future__ import annotations

import re

# Characters XML forbids (C0 controls but tab and newline, lone surrogates, U+FFFE/U+FFFF) and the
# carriage return, which the parser normalises to a newline: a text holding any of them is not plain.
_NOT_PLAIN_CHAR = "\x00-\x08\x0b\x0c\x0d\x0e-\x1f\ud800-\udfff\ufffe\uffff"
# ASCII names only: no namespace prefix (':'), nothing the parser might read differently.
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
# One CDATA section, ending at the first ']]>' as XML says; or text without markup ('<'), entity
# references ('&') or ']' (so never the forbidden ']]>'); or nothing. The CDATA loop is unrolled
# (runs of ordinary characters, then a ']' not starting ']]>'): a long base64 Encrypt is one run.
_CDATA = rf"<!\[CDATA\[([^\]{_NOT_PLAIN_CHAR}]*(?:\](?!\]>)[^\]{_NOT_PLAIN_CHAR}]*)*)\]\]>"
_TEXT = rf"([^<&\]{_NOT_PLAIN_CHAR}]*)"
_SPACE = "[ \t\n]*"
# An element after the whitespace that may precede it; the end of the document.
_ELEMENT = re.compile(rf"{_SPACE}<({_NAME})>(?:{_CDATA}|{_TEXT})</\1>")
_END = re.compile(rf"{_SPACE}</xml>")


def scan_plain(xml: str, containers: frozenset[str]) -> dict[str, object] | None:
    """The children of a plain ``<xml>`` document, tag → text, in document order; ``None`` when
    the document is not plain (also when a tag repeats or names one of ``containers``, whose
    values the full parse turns into lists)."""
    if not xml.startswith("<xml>"):
        return None
    fields: dict[str, object] = {}
    pos = 5
    match = _ELEMENT.match(xml, pos)
    while match is not None:
        tag, cdata, text = match.groups()
        if tag in fields or tag in containers:
            return None
        fields[tag] = cdata or text or ""
        pos = match.end()
        match = _ELEMENT.match(xml, pos)
    return fields if _END.fullmatch(xml, pos) is not None else None
