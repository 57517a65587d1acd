"""scrm.adapters.wecom.plainxml: the plain-document scan gives what lxml's tree gives, or declines.

The property: for any text, ``parse_xml`` (the scan, falling back to the tree) answers exactly what
``parse_xml_tree`` (lxml only) answers, the same dict or the same error; and whenever the scan
accepts a document, the tree accepts it too with the same fields in the same order. Documents are
generated from a seeded RNG: plain ones, near-plain ones (one thing the scan must decline), and
mutations of real callbacks (a character inserted, deleted or replaced).
"""

from __future__ import annotations

import random

import pytest

from scrm.adapters.wecom.events import XmlError, header_of, parse_xml, parse_xml_tree
from scrm.adapters.wecom.plainxml import scan_plain
from tests.fakes.wecom_sender import add_contact_xml

CONTAINERS = frozenset({"MemChangeList", "SelectedItems"})
TAGS = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Event", "ChangeType", "UserID", "A", "_b9",
        "xml", "xmlns", "XML", "MemChangeList", "SelectedItems", "Item"]
# Characters that matter to XML (markup, entities, the CDATA end, line ends, forbidden and odd
# characters) and some that do not.
ALPHABET = ["a", "Z", "7", " ", "\t", "\n", "\r", "]", ">", "<", "&", "'", '"', "=", "/", "!", "[", "-", "?",
            "\x00", "\x01", "\x0b", "\x1f", "\x7f", "\x85", "\xa0", "\u2028", "\ud800", "\ufffe", "\uffff",
            "中", "é", "😀", "\ufeff"]
SPACES = ["", " ", "\n", "\t", "\r", "\r\n", "\x0b", "\xa0", "  \n  "]


# What the scan reads: half the texts are drawn from these only.
ORDINARY = ["a", "Z", "7", " ", "\t", "\n", ">", "'", '"', "=", "/", "!", "[", "-", "?", "\x85", "\xa0", "\u2028",
            "中", "é", "😀", "\ufeff"]


def _text(rng: random.Random) -> str:
    alphabet = ORDINARY if rng.random() < 0.5 else ALPHABET
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))


def _element(rng: random.Random, near_plain: bool) -> str:
    tag = rng.choice(TAGS)
    kind = rng.randrange(10 if near_plain else 4)
    if kind == 0:
        return f"<{tag}><![CDATA[{_text(rng)}]]></{tag}>"
    if kind == 1:
        return f"<{tag}>{_text(rng)}</{tag}>"
    if kind == 2:
        return f"<{tag}></{tag}>"
    if kind == 3:
        return f"<{tag}><![CDATA[{rng.choice(['', 'x', ']', ']]', 'a]b', ']>', 'wx5823bf96d3bd56c7'])}]]></{tag}>"
    if kind == 4:
        return f"<{tag}/>"
    if kind == 5:
        return f"<{tag}><Item>{_text(rng)}</Item></{tag}>"
    if kind == 6:
        return f'<{tag} a="1">x</{tag}>'
    if kind == 7:
        return f"<{tag}>x<![CDATA[y]]></{tag}>"
    if kind == 8:
        return f"<{tag}><!-- c -->x</{tag}>"
    return f"<{tag}>{rng.choice(['&amp;', '&lt;', '&#65;', '&lol;', ']]>'])}</{tag}>"


def _document(rng: random.Random, near_plain: bool) -> str:
    body = "".join(rng.choice(SPACES) + _element(rng, near_plain) for _ in range(rng.randint(0, 6)))
    doc = f"<xml>{body}{rng.choice(SPACES)}</xml>"
    if near_plain and rng.random() < 0.3:
        doc = rng.choice(['<?xml version="1.0"?>', "<!DOCTYPE xml>", "\ufeff", " ", "<!-- c -->"]) + doc
    if near_plain and rng.random() < 0.2:
        doc += rng.choice(["\n", " ", "x", "<xml/>", "<!-- c -->"])
    return doc


def _mutated(rng: random.Random, doc: str) -> str:
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(doc) + 1)
        op = rng.randrange(3)
        if op == 0:
            doc = doc[:at] + rng.choice(ALPHABET) + doc[at:]
        elif op == 1:
            doc = doc[:at] + doc[at + 1:]
        else:
            doc = doc[:at] + rng.choice(ALPHABET) + doc[at + 1:]
    return doc


def _answer(parse: object, doc: str) -> object:
    try:
        fields = parse(doc)  # type: ignore[operator]
    except XmlError as exc:
        return ("error", str(exc))
    return ("fields", list(fields.items()))


def _check(doc: str) -> bool:
    """The property on one document; True when the scan accepted it."""
    tree = _answer(parse_xml_tree, doc)
    assert _answer(parse_xml, doc) == tree, repr(doc)
    scanned = scan_plain(doc, CONTAINERS)
    if scanned is not None:
        assert tree == ("fields", list(scanned.items())), repr(doc)
    return scanned is not None


@pytest.mark.parametrize("near_plain", [False, True], ids=["plain", "near-plain"])
def test_scan_equals_the_tree_on_generated_documents(near_plain: bool) -> None:
    rng = random.Random(18 + near_plain)
    accepted = sum(_check(_document(rng, near_plain)) for _ in range(5000))
    # The generator reaches both sides: documents the scan reads and documents it declines.
    assert 100 < accepted < 4900


def test_scan_equals_the_tree_on_mutated_callbacks() -> None:
    rng = random.Random(4)
    docs = [add_contact_xml(f"wm{i}", create_time=1700000000 + i) for i in range(20)]
    docs += ["<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><AgentID><![CDATA[1]]></AgentID>"
             "<Encrypt><![CDATA[RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3Q"
             "Ytp2/vRJ+Ga/uOKnI==]]></Encrypt></xml>"]
    accepted = 0
    for _ in range(20000):
        accepted += _check(_mutated(rng, rng.choice(docs)))
    assert accepted > 1000
    for doc in docs:
        assert _check(doc)


def test_a_real_callback_is_scanned_and_keyed_as_by_the_tree() -> None:
    doc = add_contact_xml("wmX", create_time=1700000000)
    scanned = scan_plain(doc, CONTAINERS)
    assert scanned is not None
    assert header_of(scanned) == header_of(parse_xml_tree(doc))


@pytest.mark.parametrize("doc", [
    '<!DOCTYPE lolz [<!ENTITY lol "lol">]><xml><A>&lol;</A></xml>',
    '<xml><A>&lol;</A></xml>',
    '<xml><A>&amp;</A></xml>',
    '<?xml version="1.0"?><xml><A>1</A></xml>',
    '<xml><A a="1">1</A></xml>',
    "<xml><A><!-- x -->1</A></xml>",
    "<xml><A>1</A><A>2</A></xml>",
    "<xml><MemChangeList>a</MemChangeList></xml>",
    "<xml><A><B>1</B></A></xml>",
    "<xml><A/></xml>",
    "<xml><A>1\r\n2</A></xml>",
    "<xml><A><![CDATA[1\r2]]></A></xml>",
    "<xml><A>x]]>y</A></xml>",
    "<xml><A><![CDATA[x]]>y]]></A></xml>",
    "<xml><A>\x01</A></xml>",
    "<xml><p:A>1</p:A></xml>",
    "<xml><A>1</A></xml>\n",
    "<xml><A>1</B></xml>",
    "<xml><A>1</A>",
], ids=lambda d: repr(d)[:40])
def test_anything_unusual_is_left_to_the_tree(doc: str) -> None:
    assert scan_plain(doc, CONTAINERS) is None
    assert _answer(parse_xml, doc) == _answer(parse_xml_tree, doc)
