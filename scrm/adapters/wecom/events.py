"""WeCom callback plaintext → typed events: safe XML parsing, dedup keys, a classification table.

A leaf module (stdlib, pydantic and lxml only). The callback uses :func:`parse_xml` and
:func:`header_of` to store a row under a dedup key before acknowledging; the inbox worker later
turns the stored plaintext into a typed event with :func:`parse_event`. Classification is a plain
table keyed by (MsgType, Event, ChangeType); anything not in it becomes :class:`UnknownEvent`, so a
new WeCom event type is never an error (PROTOCOL.md §3, ARCHITECTURE.md §3).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Literal, NamedTuple

from lxml import etree
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from scrm.adapters.wecom.plainxml import scan_plain

__all__ = [
    "EVENT_TYPES", "MAX_KEY_CHARS", "MAX_XML_CHARS", "AddExternalContact", "AddHalfExternalContact",
    "BaseEvent", "ContactEvent", "CreateParty", "CreateUser", "DelExternalContact", "DelFollowUser",
    "DeleteParty", "DeleteUser", "EditExternalContact", "EnterAgent", "EventHeader",
    "ExternalChatCreate", "ExternalChatDismiss", "ExternalChatEvent", "ExternalChatUpdate",
    "ExternalContactEvent", "ExternalTagCreate", "ExternalTagDelete", "ExternalTagEvent",
    "ExternalTagShuffle", "ExternalTagUpdate", "PartyEvent", "SelectedItem", "TemplateCardEvent",
    "TemplateCardMenuEvent", "TextMessage", "TransferFail", "UnknownEvent", "UpdateParty",
    "UpdateUser", "UserEvent", "XmlError", "header_of", "parse_event", "parse_xml", "parse_xml_tree"
]  # fmt: skip

# Real callbacks are a few KB; the callback has its own body limit, this one keeps the pure
# function safe on its own (e.g. when replaying rows from the inbox).
MAX_XML_CHARS = 1 << 20
# Matches the inbox's dedup_key column (String(512)).
MAX_KEY_CHARS = 512
# The converters recurse; WeCom documents nest a few levels, so a deeper one is hostile.
_MAX_DEPTH = 16
_DIGITS = re.compile(r"\s*[0-9]{1,19}\s*")


class XmlError(ValueError):
    """Plaintext is not acceptable XML (malformed, DOCTYPE/entities/bomb, wrong root, missing or
    invalid fields). ``str(e)`` is a one-line reason, safe to log and to return in a 4xx."""


# --------------------------------------------------------------------------- XML → flat dict


def parse_xml(xml: str) -> dict[str, object]:
    """Parse a WeCom XML document into a flat dict of the children of ``<xml>``.

    Leaf elements map to their text (CDATA or plain, ``""`` when empty). ``MemChangeList`` maps
    to ``list[str]`` (its ``<Item>`` texts); ``SelectedItems`` to a list of
    ``{"QuestionKey": str, "OptionIds": list[str]}``; any other container (unknown events) to a
    list of single-key ``{tag: value}`` dicts, which keeps order and repeats. A repeated top-level
    element becomes a list of its values, so typed models reject the ambiguity while unknown
    events keep it. Raises :class:`XmlError` for anything that is not such a document.

    A plain document (leaf elements only: every envelope, most events) is read by a scanner that
    gives the same dict without building lxml's tree; anything else goes through the tree.
    """
    if len(xml) > MAX_XML_CHARS:
        raise XmlError(f"XML too large: {len(xml)} characters (limit {MAX_XML_CHARS})")
    plain = scan_plain(xml, _CONTAINERS)
    return plain if plain is not None else parse_xml_tree(xml)


def parse_xml_tree(xml: str) -> dict[str, object]:
    """:func:`parse_xml` through lxml's tree, for every document: what :func:`parse_xml` does
    for one that is not plain (``plainxml.scan_plain``), and what the plain scan must equal."""
    if len(xml) > MAX_XML_CHARS:
        raise XmlError(f"XML too large: {len(xml)} characters (limit {MAX_XML_CHARS})")
    try:
        root = etree.fromstring(xml.encode("utf-8"), _parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise XmlError(f"malformed XML: {_short(str(exc), 80)}") from None
    if "<!DOCTYPE" in xml:  # markup cannot be escaped: without this text there is no DTD
        docinfo = root.getroottree().docinfo
        if docinfo.internalDTD is not None or docinfo.externalDTD is not None:
            # Never expanded or fetched (the parser resolves no entity and loads no DTD), and
            # refused all the same: WeCom sends none, so one is an attack or a mistake.
            raise XmlError("XML rejected: DOCTYPE is forbidden")
    if root.tag != "xml":
        raise XmlError(f"root element must be <xml>, got <{_short(root.tag)}>")
    fields: dict[str, object] = {}
    repeated: dict[str, list[object]] | None = None
    for child in root:
        tag = child.tag
        # A leaf's text directly: _value's checks per child were half a callback's parse.
        value = _value(child, 1) if len(child) or tag in _CONTAINERS else (child.text or "")
        if tag not in fields:
            fields[tag] = value
        else:
            repeated = repeated if repeated is not None else {}
            repeated.setdefault(tag, [fields[tag]]).append(value)
    if repeated:
        fields.update(repeated)
    return fields


# Elements that map to lists even when empty (``_value``).
_CONTAINERS = frozenset({"MemChangeList", "SelectedItems"})


# lxml (libxml2) parses a callback in 13 µs where defusedxml took 67 µs (its guards are Python
# handlers on the pure-Python tree builder), and a callback is parsed twice (envelope, event).
# Hardened: no entity is substituted, no DTD loaded, nothing fetched, libxml2's size and depth
# limits stay on; comments and processing instructions are dropped like the stdlib's parser does.
_PARSERS = threading.local()


def _parser() -> etree.XMLParser:
    """One parser per thread (lxml parsers are not to be shared between threads)."""
    parser: etree.XMLParser | None = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False,
            remove_comments=True, remove_pis=True)
    return parser


def _value(elem: etree._Element, depth: int) -> object:
    if depth > _MAX_DEPTH:
        raise XmlError(f"XML nested deeper than {_MAX_DEPTH} levels")
    if elem.tag == "MemChangeList":
        return _texts(elem)
    if elem.tag == "SelectedItems":
        return [_selected_item(item) for item in elem]
    if len(elem) == 0:
        return elem.text or ""
    return [{child.tag: _value(child, depth + 1)} for child in elem]


def _texts(elem: etree._Element) -> list[str]:
    # Any child tag counts as an item: only <Item> is documented, and dropping a member over a tag's
    # spelling would silently desync the group. <Item> children are documented only from WeCom 4.8,
    # so a bare text body is kept as one item rather than guessing a separator.
    if len(elem) == 0:
        return [elem.text] if elem.text and elem.text.strip() else []
    return [child.text or "" for child in elem]


def _selected_item(elem: etree._Element) -> dict[str, object]:
    key = elem.find("QuestionKey")
    ids = elem.find("OptionIds")
    return {
        "QuestionKey": (key.text or "") if key is not None else "",
        "OptionIds": _texts(ids) if ids is not None else [],
    }


def _short(text: str, limit: int = 40) -> str:
    """A value trimmed and flattened for a one-line error message."""
    flat = text.replace("\n", " ").replace("\r", " ")
    return flat if len(flat) <= limit else flat[:limit] + "…"


# --------------------------------------------------------------------------- dedup header


class EventHeader(NamedTuple):
    """What the callback needs before storing a row: classification fields and the dedup key.

    A named tuple, not a frozen dataclass: built once per callback, and a frozen dataclass's
    ``__init__`` (an ``object.__setattr__`` per field) took a fifth of ``header_of``."""

    msg_type: str
    event: str
    change_type: str
    dedup_key: str
    # What this event must stay in order with (one customer, one group chat); "" = nothing.
    order_key: str = ""
    # It carries a WelcomeCode (valid 20 s): handled before anything else that is waiting.
    urgent: bool = False


# Fields that lead the composite key, so a key clipped by the hash rule stays readable.
_KEY_FIRST = (
    "MsgType", "Event", "ChangeType", "CreateTime", "FromUserName", "UserID", "ChatId", "Id",
    "ExternalUserID", "UpdateDetail", "TagType", "EventKey", "TaskId", "ResponseCode", "AgentID",
)  # fmt: skip
# ToUserName is the CorpID on every callback of a deployment: it distinguishes nothing.
_KEY_SKIP = frozenset({"ToUserName"})
# Escaping keeps the key injective: values can never forge a field separator.
_KEY_ESCAPE = str.maketrans({"%": "%25", "|": "%7C", "\n": "%0A", "\r": "%0D"})


def header_of(fields: Mapping[str, object]) -> EventHeader:
    """Classification fields and the inbox dedup key of a parsed callback.

    WeCom recommends MsgId for messages (key ``msg:{MsgId}``) and FromUserName+CreateTime for
    events. That is too coarse for ``sys`` events (every change_* event comes from ``sys``) and
    for one member's clicks in one second, so events get a composite of *every* field except
    ToUserName, labelled ``Name=value`` and joined by ``|``, the identifying ones first (Event,
    ChangeType, CreateTime, FromUserName, UserID/ChatId/Id, ExternalUserID, UpdateDetail, ...,
    then the rest sorted, e.g. MemChangeList and CurMemVer). WeCom's retries re-send the same
    message, so the key is stable; two events that differ in any field get different keys, even unknown
    event types whose identifying fields we cannot name. Keys longer than
    :data:`MAX_KEY_CHARS` keep their head and end in ``#`` + sha256 of the whole key.
    Raises :class:`XmlError` when MsgType, FromUserName or CreateTime is missing or invalid.
    """
    for name in ("MsgType", "FromUserName", "CreateTime"):
        value = fields.get(name)
        if not isinstance(value, str) or not value:
            raise XmlError(f"{name}: missing, empty or repeated")
    create_time = str(fields["CreateTime"])
    if not _DIGITS.fullmatch(create_time):
        raise XmlError(f"CreateTime: not an integer: {_short(create_time)!r}")
    msg_id = _flat(fields.get("MsgId", ""))
    if msg_id:
        key = f"msg:{_escaped(msg_id)}"
    else:
        head = "sys" if fields["FromUserName"] == "sys" else "evt"
        # Absent and empty mean the same to WeCom: empty values are left out. Most values are
        # text already: _flat is called only for the others (one call a field was a tenth of this).
        texts = [(name, text) for name in _key_order(tuple(fields))
                 if (text := value if (value := fields[name]).__class__ is str else _flat(value))]
        key = "|".join([head, *[f"{name}={text}" for name, text in texts]])
        if "%" in key or "\n" in key or "\r" in key or key.count("|") != len(texts):
            # Names never hold these (XML names cannot), so a value does: escape the values.
            key = "|".join([head, *[f"{name}={_escaped(text)}" for name, text in texts]])
    if len(key) > MAX_KEY_CHARS:
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        key = f"{key[: MAX_KEY_CHARS - len(digest) - 1]}#{digest}"
    event = _flat(fields.get("Event", ""))
    return EventHeader(_flat(fields["MsgType"]), event, _flat(fields.get("ChangeType", "")), key,
                       _order_key(fields, event), bool(_flat(fields.get("WelcomeCode", ""))))


_KEY_FIRST_OR_SKIPPED = frozenset(_KEY_FIRST) | _KEY_SKIP


@functools.lru_cache(maxsize=256)
def _key_order(names: tuple[str, ...]) -> tuple[str, ...]:
    """The fields of a key in key order: the identifying ones first, then the rest sorted.

    Cached by the document's field names (one entry per kind of event; bounded, so varied
    documents only cost the cache its hits)."""
    present = set(names)
    return (*[name for name in _KEY_FIRST if name in present],
            *sorted(name for name in present if name not in _KEY_FIRST_OR_SKIPPED))


def _escaped(text: str) -> str:
    # translate() walks a mapping per character; most values have nothing to escape.
    if "%" in text or "|" in text or "\n" in text or "\r" in text:
        return text.translate(_KEY_ESCAPE)
    return text


# Address-book changes (members and departments) share one order key: a member's department
# must exist before the member is placed in it, and a leader change touches a whole team.
DIRECTORY_ORDER_KEY = "directory"


def _order_key(fields: Mapping[str, object], event: str) -> str:
    """The customer or chat an event belongs to: events of one key are handled in arrival order
    (an add after a delete must not overtake it), events of different keys concurrently. Per
    customer, not per relation: a transfer names the old manager but changes the new one's.
    Address-book changes (``change_contact``) are handled one after another, in arrival order."""
    if event == _DIRECTORY:
        return DIRECTORY_ORDER_KEY
    ext, chat = _flat(fields.get("ExternalUserID", "")), _flat(fields.get("ChatId", ""))
    if ext:
        return f"customer:{ext}"[:160]
    if chat:
        return f"chat:{chat}"[:160]
    return ""


def _flat(value: object) -> str:
    """One canonical string per value: text as is, lists/dicts as compact sorted JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str)


# --------------------------------------------------------------------------- typed events


def _xml_int(value: object) -> object:
    # pydantic's lax int accepts "1_000" and "1.0"; WeCom sends plain decimal digits only.
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise ValueError("must be a decimal integer")
    return value


def _xml_opt_int(value: object) -> object:
    # An empty element (<JoinScene></JoinScene>) means "not applicable", not an error.
    if isinstance(value, str) and not value.strip():
        return None
    return _xml_int(value)


def _xml_int_list(value: object) -> object:
    # Department and IsLeaderInDept are comma-separated integers ("1,2,3"); empty means none.
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
        for part in parts:
            if not _DIGITS.fullmatch(part):
                raise ValueError("must be comma-separated decimal integers")
        return [int(p) for p in parts]
    return value


_Int = Annotated[int, BeforeValidator(_xml_int)]
_OptInt = Annotated[int | None, BeforeValidator(_xml_opt_int)]
_IntList = Annotated[tuple[int, ...], BeforeValidator(_xml_int_list)]


class BaseEvent(BaseModel):
    """Fields every WeCom callback carries; subclasses name their ``kind`` (e.g. ``external_contact.add``).

    Models validate by XML name (``UserID``) or by field name (``user_id``); unknown XML fields
    are ignored, and instances are immutable.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)
    kind: ClassVar[str]

    to_user_name: str = Field(alias="ToUserName")
    from_user_name: str = Field(alias="FromUserName")
    create_time: _Int = Field(alias="CreateTime")
    msg_type: str = Field(alias="MsgType")
    event: str = Field("", alias="Event")
    change_type: str = Field("", alias="ChangeType")


class ExternalContactEvent(BaseEvent):
    """Base of ``change_external_contact`` events: a member (user_id) and a customer."""

    user_id: str = Field(alias="UserID")
    external_user_id: str = Field(alias="ExternalUserID")


class _WelcomeEvent(ExternalContactEvent):
    # State is the 「联系我」state or the 获客链接 customer_channel; WelcomeCode is single use,
    # valid ~20 s, and absent when WeCom will not let us send a welcome (PROTOCOL.md §3).
    state: str = Field("", alias="State")
    welcome_code: str = Field("", alias="WelcomeCode")


class AddExternalContact(_WelcomeEvent):
    """A member added a customer (or a customer added a member)."""

    kind: ClassVar[str] = "external_contact.add"


class AddHalfExternalContact(_WelcomeEvent):
    """A customer added a 免验证 member who has not confirmed yet."""

    kind: ClassVar[str] = "external_contact.add_half"


class EditExternalContact(ExternalContactEvent):
    """A member edited a customer's remark or corp tags."""

    kind: ClassVar[str] = "external_contact.edit"


class DelExternalContact(ExternalContactEvent):
    """A member deleted a customer; ``source == "DELETE_BY_TRANSFER"`` for 在职继承."""

    kind: ClassVar[str] = "external_contact.del"
    source: str = Field("", alias="Source")


class DelFollowUser(ExternalContactEvent):
    """A customer deleted the member."""

    kind: ClassVar[str] = "external_contact.del_follow_user"


class TransferFail(ExternalContactEvent):
    """A customer transfer failed: ``customer_refused`` or ``customer_limit_exceed``."""

    kind: ClassVar[str] = "external_contact.transfer_fail"
    fail_reason: str = Field("", alias="FailReason")


class ExternalChatEvent(BaseEvent):
    """Base of ``change_external_chat`` events on one customer group."""

    chat_id: str = Field(alias="ChatId")


class ExternalChatCreate(ExternalChatEvent):
    """A customer group was created."""

    kind: ClassVar[str] = "external_chat.create"


class ExternalChatUpdate(ExternalChatEvent):
    """A customer group changed; member fields are set only for add_member / del_member.

    Apply ``mem_change_list`` as a delta only when ``last_mem_ver`` equals the stored member
    version; otherwise re-fetch the group.
    """

    kind: ClassVar[str] = "external_chat.update"
    update_detail: str = Field("", alias="UpdateDetail")
    join_scene: _OptInt = Field(None, alias="JoinScene")
    quit_scene: _OptInt = Field(None, alias="QuitScene")
    mem_change_cnt: _OptInt = Field(None, alias="MemChangeCnt")
    mem_change_list: list[str] = Field(default_factory=list, alias="MemChangeList")
    last_mem_ver: str = Field("", alias="LastMemVer")
    cur_mem_ver: str = Field("", alias="CurMemVer")


class ExternalChatDismiss(ExternalChatEvent):
    """A customer group was dismissed."""

    kind: ClassVar[str] = "external_chat.dismiss"


class ExternalTagEvent(BaseEvent):
    """Base of ``change_external_tag`` events; ``strategy_id`` is the rule group, if any."""

    id: str = Field("", alias="Id")
    strategy_id: str = Field("", alias="StrategyId")


class _TagChange(ExternalTagEvent):
    id: str = Field(alias="Id")
    tag_type: Literal["tag", "tag_group"] = Field(alias="TagType")


class ExternalTagCreate(_TagChange):
    """A corp tag or tag group was created."""

    kind: ClassVar[str] = "external_tag.create"


class ExternalTagUpdate(_TagChange):
    """A corp tag or tag group was renamed or changed."""

    kind: ClassVar[str] = "external_tag.update"


class ExternalTagDelete(_TagChange):
    """A corp tag or tag group was deleted (a group delete emits no per-tag deletes)."""

    kind: ClassVar[str] = "external_tag.delete"


class ExternalTagShuffle(ExternalTagEvent):
    """Tags were reordered: within group ``id``, or all groups when ``id`` is empty."""

    kind: ClassVar[str] = "external_tag.shuffle"


class SelectedItem(BaseModel):
    """One answered question of a vote/multiple-choice template card."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    question_key: str = Field("", alias="QuestionKey")
    option_ids: list[str] = Field(default_factory=list, alias="OptionIds")


class _CardEvent(BaseEvent):
    # response_code feeds message/update_template_card (single use, 72 h).
    event_key: str = Field("", alias="EventKey")
    task_id: str = Field("", alias="TaskId")
    card_type: str = Field("", alias="CardType")
    response_code: str = Field("", alias="ResponseCode")
    agent_id: _OptInt = Field(None, alias="AgentID")


class TemplateCardEvent(_CardEvent):
    """A member clicked a button (``event_key``) of template card ``task_id``."""

    kind: ClassVar[str] = "template_card.event"
    selected_items: list[SelectedItem] = Field(default_factory=list, alias="SelectedItems")


class TemplateCardMenuEvent(_CardEvent):
    """A member chose an item of a template card's menu."""

    kind: ClassVar[str] = "template_card.menu_event"


class EnterAgent(BaseEvent):
    """A member opened the app; ``from_user_name`` is the member's userid."""

    kind: ClassVar[str] = "agent.enter"
    event_key: str = Field("", alias="EventKey")
    agent_id: _OptInt = Field(None, alias="AgentID")


class TextMessage(BaseEvent):
    """A member sent the app a text message."""

    kind: ClassVar[str] = "message.text"
    content: str = Field("", alias="Content")
    # A 64-bit id: kept as text so it survives JSON and JavaScript unchanged.
    msg_id: str = Field(alias="MsgId")
    agent_id: _OptInt = Field(None, alias="AgentID")


class ContactEvent(BaseEvent):
    """Base of ``change_contact`` events: the address book (通讯录) changed in the admin console
    or the client. Update events carry only the fields that changed."""


class UserEvent(ContactEvent):
    """A member (成员) event; ``user_id`` is the member's userid."""

    user_id: str = Field(alias="UserID")


class _UserFields(UserEvent):
    # Department and IsLeaderInDept run parallel ("1,2" / "1,0"); empty when not sent.
    name: str = Field("", alias="Name")
    department: _IntList = Field((), alias="Department")
    main_department: _OptInt = Field(None, alias="MainDepartment")
    is_leader_in_dept: _IntList = Field((), alias="IsLeaderInDept")
    position: str = Field("", alias="Position")
    status: _OptInt = Field(None, alias="Status")  # 1 active, 2 disabled, 4 not activated, 5 left


class CreateUser(_UserFields):
    """A member was added to the corp."""

    kind: ClassVar[str] = "contact.create_user"


class UpdateUser(_UserFields):
    """A member changed (name, departments, leadership, status …); ``new_user_id`` is set when the
    userid itself changed."""

    kind: ClassVar[str] = "contact.update_user"
    new_user_id: str = Field("", alias="NewUserID")


class DeleteUser(UserEvent):
    """A member was deleted: they left the bank."""

    kind: ClassVar[str] = "contact.delete_user"


class PartyEvent(ContactEvent):
    """A department (部门) event; ``id`` is the department id."""

    id: _Int = Field(alias="Id")


class CreateParty(PartyEvent):
    """A department was created."""

    kind: ClassVar[str] = "contact.create_party"
    name: str = Field("", alias="Name")
    parent_id: _OptInt = Field(None, alias="ParentId")
    order: _OptInt = Field(None, alias="Order")


class UpdateParty(PartyEvent):
    """A department was renamed or moved (only the changed fields are sent)."""

    kind: ClassVar[str] = "contact.update_party"
    name: str = Field("", alias="Name")
    parent_id: _OptInt = Field(None, alias="ParentId")


class DeleteParty(PartyEvent):
    """A department was deleted (WeCom deletes only empty departments)."""

    kind: ClassVar[str] = "contact.delete_party"


class UnknownEvent(BaseEvent):
    """Any callback not in :data:`EVENT_TYPES`; ``fields`` holds everything :func:`parse_xml` gave."""

    kind: ClassVar[str] = "unknown"
    fields: dict[str, str | list[Any]] = Field(default_factory=dict)


_CONTACT, _CHAT, _TAG = "change_external_contact", "change_external_chat", "change_external_tag"
_DIRECTORY = "change_contact"

EVENT_TYPES: Mapping[tuple[str, str, str], type[BaseEvent]] = MappingProxyType(
    {
        ("event", _CONTACT, "add_external_contact"): AddExternalContact,
        ("event", _CONTACT, "edit_external_contact"): EditExternalContact,
        ("event", _CONTACT, "add_half_external_contact"): AddHalfExternalContact,
        ("event", _CONTACT, "del_external_contact"): DelExternalContact,
        ("event", _CONTACT, "del_follow_user"): DelFollowUser,
        ("event", _CONTACT, "transfer_fail"): TransferFail,
        ("event", _CHAT, "create"): ExternalChatCreate,
        ("event", _CHAT, "update"): ExternalChatUpdate,
        ("event", _CHAT, "dismiss"): ExternalChatDismiss,
        ("event", _TAG, "create"): ExternalTagCreate,
        ("event", _TAG, "update"): ExternalTagUpdate,
        ("event", _TAG, "delete"): ExternalTagDelete,
        ("event", _TAG, "shuffle"): ExternalTagShuffle,
        ("event", _DIRECTORY, "create_user"): CreateUser,
        ("event", _DIRECTORY, "update_user"): UpdateUser,
        ("event", _DIRECTORY, "delete_user"): DeleteUser,
        ("event", _DIRECTORY, "create_party"): CreateParty,
        ("event", _DIRECTORY, "update_party"): UpdateParty,
        ("event", _DIRECTORY, "delete_party"): DeleteParty,
        ("event", "template_card_event", ""): TemplateCardEvent,
        ("event", "template_card_menu_event", ""): TemplateCardMenuEvent,
        ("event", "enter_agent", ""): EnterAgent,
        ("text", "", ""): TextMessage,
    }
)
"""(MsgType, Event, ChangeType) → model. Lookup tries the full key, then (MsgType, Event, ""),
then (MsgType, "", ""); anything else is an :class:`UnknownEvent`."""

_HEADER_ALIASES = ("ToUserName", "FromUserName", "CreateTime", "MsgType", "Event", "ChangeType")


def parse_event(xml_or_fields: str | Mapping[str, object]) -> BaseEvent:
    """Parse decrypted callback plaintext (or the dict :func:`parse_xml` made of it) into an event.

    Never raises for an unknown type (→ :class:`UnknownEvent`); raises :class:`XmlError` with a
    one-line reason naming the field when the XML is unacceptable or a known type's fields fail
    validation (e.g. a non-integer CreateTime, no UserID on add_external_contact).
    """
    fields = parse_xml(xml_or_fields) if isinstance(xml_or_fields, str) else dict(xml_or_fields)
    msg_type, event, change = (_flat(fields.get(n, "")) for n in ("MsgType", "Event", "ChangeType"))
    model = (
        EVENT_TYPES.get((msg_type, event, change))
        or EVENT_TYPES.get((msg_type, event, ""))
        or EVENT_TYPES.get((msg_type, "", ""))
        or UnknownEvent
    )
    data = fields
    if model is UnknownEvent:
        # The header by alias plus the whole dict, so an XML element named "fields" cannot
        # collide with our attribute.
        data = {n: fields[n] for n in _HEADER_ALIASES if n in fields} | {"fields": fields}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        where = ".".join(str(p) for p in first["loc"]) or "<xml>"
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise XmlError(f"{model.kind}: {where}: {_short(first['msg'], 80)}{more}") from None
