"""scrm.adapters.wecom.events: safe XML parsing, dedup keys and the classification table."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from scrm.adapters.wecom.events import (
    EVENT_TYPES,
    MAX_KEY_CHARS,
    AddExternalContact,
    AddHalfExternalContact,
    BaseEvent,
    DelExternalContact,
    DelFollowUser,
    EditExternalContact,
    EnterAgent,
    ExternalChatCreate,
    ExternalChatDismiss,
    ExternalChatUpdate,
    ExternalContactEvent,
    ExternalTagCreate,
    ExternalTagDelete,
    ExternalTagShuffle,
    ExternalTagUpdate,
    SelectedItem,
    TemplateCardEvent,
    TemplateCardMenuEvent,
    TextMessage,
    TransferFail,
    UnknownEvent,
    XmlError,
    header_of,
    parse_event,
    parse_xml,
)

VECTORS = Path("/work/shared/wecom/vectors.json")


def _official_plaintext() -> str:
    vectors = json.loads(VECTORS.read_text(encoding="utf-8"))["vectors"]
    return str(next(v for v in vectors if v["name"] == "official_post_xml")["expected_plaintext"])


def cdata(value: str) -> str:
    return f"<![CDATA[{value}]]>"


def plain(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;")


Wrap = Callable[[str], str]


def build(wrap: Wrap = cdata, **fields: str) -> str:
    """A callback document; CreateTime and AgentID are always plain numbers, as WeCom sends them."""
    body = "".join(
        f"<{name}>{value if name in {'CreateTime', 'AgentID'} else wrap(value)}</{name}>"
        for name, value in fields.items()
    )
    return f"<xml>{body}</xml>"


def contact(change: str, wrap: Wrap = cdata, **extra: str) -> str:
    return build(
        wrap, ToUserName="toUser", FromUserName="sys", CreateTime="1403610513", MsgType="event",
        Event="change_external_contact", ChangeType=change, UserID="zhangsan",
        ExternalUserID="woAJ2GCAAAXtWyujaWJHDDGi0mAAAA", **extra,
    )  # fmt: skip


ADD_CONTACT = contact("add_external_contact", State="teststate", WelcomeCode="WELCOMECODE")

CHAT_UPDATE = """<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>
<CreateTime>1403610513</CreateTime><MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[change_external_chat]]></Event><ChatId><![CDATA[CHAT_ID]]></ChatId>
<ChangeType><![CDATA[update]]></ChangeType><UpdateDetail><![CDATA[add_member]]></UpdateDetail>
<JoinScene>1</JoinScene><QuitScene>0</QuitScene><MemChangeCnt>10</MemChangeCnt>
<MemChangeList><Item>Jack</Item><Item>Rose</Item></MemChangeList>
<LastMemVer>9c3f97c2ada667dfb5f6d03308d963e1</LastMemVer><CurMemVer>71217227bbd112ecfe3a49c482195cb4</CurMemVer></xml>"""

CARD_EVENT = """<xml><ToUserName><![CDATA[toUser]]></ToUserName>
<FromUserName><![CDATA[FromUser]]></FromUserName>
<CreateTime>123456789</CreateTime><MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[key111]]></EventKey>
<TaskId><![CDATA[taskid111]]></TaskId><CardType><![CDATA[text_notice]]></CardType>
<ResponseCode><![CDATA[ResponseCode]]></ResponseCode><AgentID>1</AgentID>
<SelectedItems><SelectedItem><QuestionKey><![CDATA[QuestionKey1]]></QuestionKey>
<OptionIds><OptionId><![CDATA[OptionId1]]></OptionId></OptionIds></SelectedItem></SelectedItems></xml>"""


def chat(change: str, wrap: Wrap = cdata, **extra: str) -> str:
    return build(
        wrap, ToUserName="toUser", FromUserName="sys", CreateTime="1403610513", MsgType="event",
        Event="change_external_chat", ChatId="wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA", ChangeType=change, **extra,
    )  # fmt: skip


def members_joined(members: list[str], last: str, cur: str) -> str:
    items = "".join(f"<Item>{m}</Item>" for m in members)
    xml = chat(
        "update",
        UpdateDetail="add_member",
        JoinScene="3",
        MemChangeCnt=str(len(members)),
        LastMemVer=last,
        CurMemVer=cur,
    )
    return xml.replace("</xml>", f"<MemChangeList>{items}</MemChangeList></xml>")


def tag(change: str, wrap: Wrap = cdata, **extra: str) -> str:
    return build(
        wrap, ToUserName="toUser", FromUserName="sys", CreateTime="1403610513", MsgType="event",
        Event="change_external_tag", ChangeType=change, **extra,
    )  # fmt: skip


# --------------------------------------------------------------------------- parse_xml


@pytest.mark.parametrize("wrap", [cdata, plain], ids=["cdata", "plain"])
def test_parse_xml_leaf_text_with_and_without_cdata(wrap: Wrap) -> None:
    fields = parse_xml(contact("add_external_contact", wrap, State="a&b <c>", WelcomeCode=""))
    assert fields["UserID"] == "zhangsan"
    assert fields["CreateTime"] == "1403610513"
    assert fields["State"] == "a&b <c>"
    assert fields["WelcomeCode"] == ""


def test_parse_xml_member_change_list_items() -> None:
    fields = parse_xml(CHAT_UPDATE)
    assert fields["MemChangeList"] == ["Jack", "Rose"]
    assert fields["JoinScene"] == "1"
    assert parse_xml("<xml><MemChangeList></MemChangeList></xml>") == {"MemChangeList": []}
    one = "<xml><MemChangeList><Item><![CDATA[wmX]]></Item></MemChangeList></xml>"
    assert parse_xml(one) == {"MemChangeList": ["wmX"]}


def test_parse_xml_selected_items() -> None:
    fields = parse_xml(CARD_EVENT)
    assert fields["SelectedItems"] == [{"QuestionKey": "QuestionKey1", "OptionIds": ["OptionId1"]}]
    two = (
        "<xml><SelectedItems><SelectedItem><QuestionKey>q1</QuestionKey><OptionIds><OptionId>a</OptionId>"
        "<OptionId>b</OptionId></OptionIds></SelectedItem><SelectedItem><QuestionKey>q2</QuestionKey>"
        "</SelectedItem></SelectedItems></xml>"
    )
    assert parse_xml(two)["SelectedItems"] == [
        {"QuestionKey": "q1", "OptionIds": ["a", "b"]},
        {"QuestionKey": "q2", "OptionIds": []},
    ]


def test_parse_xml_unknown_containers_and_repeats_are_kept() -> None:
    doc = "<xml><BatchJob><JobId>j1</JobId><JobType>sync_user</JobType></BatchJob><A>1</A><A>2</A></xml>"
    assert parse_xml(doc) == {"BatchJob": [{"JobId": "j1"}, {"JobType": "sync_user"}], "A": ["1", "2"]}


def test_parse_xml_accepts_declaration_bom_and_whitespace() -> None:
    doc = '\ufeff<?xml version="1.0" encoding="UTF-8"?>\n<xml>\n  <Content><![CDATA[你好]]></Content>\n</xml>'
    assert parse_xml(doc) == {"Content": "你好"}


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<xml><Content>&lol3;</Content></xml>"""

XXE = """<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><Content>&xxe;</Content></xml>"""


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ("<!DOCTYPE xml><xml><A>1</A></xml>", "DOCTYPE"),
        (XXE, "DOCTYPE"),
        (BILLION_LAUGHS, "DOCTYPE"),
        ('<!DOCTYPE xml SYSTEM "http://example.invalid/x.dtd"><xml/>', "DOCTYPE"),
        ("<xml><A>&undefined;</A></xml>", "malformed"),
        ("<xml><A>1</B></xml>", "malformed"),
        ("<xml><A>1</A>", "malformed"),
        ("<xml/><xml/>", "malformed"),
        ("", "malformed"),
        ("   ", "malformed"),
        ("hello world", "malformed"),
        ('{"MsgType": "text"}', "malformed"),
        ("<root><A>1</A></root>", "root element must be <xml>"),
        ('<xml xmlns="urn:x"><A>1</A></xml>', "root element must be <xml>"),
        ("<xml>" + "<a>" * 40 + "</a>" * 40 + "</xml>", "nested deeper"),
        ("<xml><A>" + "x" * (1 << 20) + "</A></xml>", "too large"),
    ],
    ids=[
        "doctype", "xxe", "billion-laughs", "external-dtd", "undefined-entity", "mismatched", "truncated",
        "two-roots", "empty", "blank", "text", "json", "wrong-root", "namespaced-root", "deep", "huge",
    ],
)  # fmt: skip
def test_parse_xml_rejects(doc: str, reason: str) -> None:
    with pytest.raises(XmlError, match=reason) as info:
        parse_xml(doc)
    assert "\n" not in str(info.value)


def test_xml_error_is_a_value_error() -> None:
    assert issubclass(XmlError, ValueError)


# --------------------------------------------------------------------------- typed events


@pytest.mark.parametrize("wrap", [cdata, plain], ids=["cdata", "plain"])
def test_add_external_contact(wrap: Wrap) -> None:
    xml = contact("add_external_contact", wrap, State="teststate", WelcomeCode="WELCOMECODE")
    event = parse_event(xml)
    assert isinstance(event, AddExternalContact)
    assert isinstance(event, ExternalContactEvent)
    assert event.kind == "external_contact.add"
    assert (event.to_user_name, event.from_user_name, event.create_time) == ("toUser", "sys", 1403610513)
    assert (event.msg_type, event.event, event.change_type) == (
        "event",
        "change_external_contact",
        "add_external_contact",
    )
    assert (event.user_id, event.external_user_id) == ("zhangsan", "woAJ2GCAAAXtWyujaWJHDDGi0mAAAA")
    assert (event.state, event.welcome_code) == ("teststate", "WELCOMECODE")


def test_add_external_contact_without_welcome_code() -> None:
    event = parse_event(contact("add_external_contact"))
    assert isinstance(event, AddExternalContact)
    assert (event.state, event.welcome_code) == ("", "")


@pytest.mark.parametrize(
    ("change", "extra", "cls", "kind"),
    [
        ("edit_external_contact", {}, EditExternalContact, "external_contact.edit"),
        (
            "add_half_external_contact",
            {"State": "s", "WelcomeCode": "W"},
            AddHalfExternalContact,
            "external_contact.add_half",
        ),
        ("del_external_contact", {"Source": "DELETE_BY_TRANSFER"}, DelExternalContact, "external_contact.del"),
        ("del_follow_user", {}, DelFollowUser, "external_contact.del_follow_user"),
        ("transfer_fail", {"FailReason": "customer_refused"}, TransferFail, "external_contact.transfer_fail"),
    ],
)
@pytest.mark.parametrize("wrap", [cdata, plain], ids=["cdata", "plain"])
def test_contact_events(change: str, extra: dict[str, str], cls: type[BaseEvent], kind: str, wrap: Wrap) -> None:
    event = parse_event(contact(change, wrap, **extra))
    assert type(event) is cls
    assert event.kind == kind
    assert isinstance(event, ExternalContactEvent)
    assert event.user_id == "zhangsan"
    # A half-added contact must not look like a confirmed one to isinstance-based handlers.
    assert not isinstance(event, AddExternalContact)
    if isinstance(event, AddHalfExternalContact):
        assert event.welcome_code == "W"
    if isinstance(event, DelExternalContact):
        assert event.source == "DELETE_BY_TRANSFER"
    if isinstance(event, TransferFail):
        assert event.fail_reason == "customer_refused"


def test_external_chat_update_with_members() -> None:
    event = parse_event(CHAT_UPDATE)
    assert isinstance(event, ExternalChatUpdate)
    assert event.kind == "external_chat.update"
    assert event.chat_id == "CHAT_ID"
    assert event.update_detail == "add_member"
    assert (event.join_scene, event.quit_scene, event.mem_change_cnt) == (1, 0, 10)
    assert event.mem_change_list == ["Jack", "Rose"]
    assert event.last_mem_ver == "9c3f97c2ada667dfb5f6d03308d963e1"
    assert event.cur_mem_ver == "71217227bbd112ecfe3a49c482195cb4"


def test_external_chat_update_cdata_and_without_member_fields() -> None:
    event = parse_event(chat("update", UpdateDetail="change_name", JoinScene=""))
    assert isinstance(event, ExternalChatUpdate)
    assert event.update_detail == "change_name"
    assert (event.join_scene, event.quit_scene, event.mem_change_cnt) == (None, None, None)
    assert event.mem_change_list == []
    assert parse_event(chat("update", JoinScene="3")).join_scene == 3  # type: ignore[attr-defined]


@pytest.mark.parametrize("wrap", [cdata, plain], ids=["cdata", "plain"])
def test_external_chat_create_and_dismiss(wrap: Wrap) -> None:
    created, dismissed = parse_event(chat("create", wrap)), parse_event(chat("dismiss", wrap))
    assert isinstance(created, ExternalChatCreate) and created.kind == "external_chat.create"
    assert isinstance(dismissed, ExternalChatDismiss) and dismissed.kind == "external_chat.dismiss"
    assert created.chat_id == dismissed.chat_id == "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"


@pytest.mark.parametrize(
    ("change", "cls", "kind"),
    [
        ("create", ExternalTagCreate, "external_tag.create"),
        ("update", ExternalTagUpdate, "external_tag.update"),
        ("delete", ExternalTagDelete, "external_tag.delete"),
    ],
)
@pytest.mark.parametrize("wrap", [cdata, plain], ids=["cdata", "plain"])
def test_external_tag_changes(change: str, cls: type[BaseEvent], kind: str, wrap: Wrap) -> None:
    event = parse_event(tag(change, wrap, Id="etXXX", TagType="tag_group", StrategyId="1"))
    assert type(event) is cls and event.kind == kind
    assert isinstance(event, ExternalTagCreate | ExternalTagUpdate | ExternalTagDelete)
    assert (event.id, event.tag_type, event.strategy_id) == ("etXXX", "tag_group", "1")


def test_external_tag_shuffle_with_and_without_id() -> None:
    one = parse_event(tag("shuffle", Id="etGROUP", StrategyId="2"))
    assert isinstance(one, ExternalTagShuffle) and one.kind == "external_tag.shuffle"
    assert (one.id, one.strategy_id) == ("etGROUP", "2")
    every = parse_event(tag("shuffle"))
    assert isinstance(every, ExternalTagShuffle) and every.id == ""


def test_template_card_event() -> None:
    event = parse_event(CARD_EVENT)
    assert isinstance(event, TemplateCardEvent) and event.kind == "template_card.event"
    assert (event.from_user_name, event.create_time) == ("FromUser", 123456789)
    assert (event.event_key, event.task_id, event.card_type) == ("key111", "taskid111", "text_notice")
    assert (event.response_code, event.agent_id) == ("ResponseCode", 1)
    assert event.selected_items == [SelectedItem(question_key="QuestionKey1", option_ids=["OptionId1"])]


def test_template_card_menu_event() -> None:
    xml = build(
        ToUserName="toUser", FromUserName="lisi", CreateTime="123456789", MsgType="event",
        Event="template_card_menu_event", EventKey="menu1", TaskId="t1", CardType="button_interaction",
        ResponseCode="rc", AgentID="1000002",
    )  # fmt: skip
    event = parse_event(xml)
    assert isinstance(event, TemplateCardMenuEvent) and event.kind == "template_card.menu_event"
    assert not isinstance(event, TemplateCardEvent)
    assert (event.event_key, event.task_id, event.agent_id) == ("menu1", "t1", 1000002)


def test_enter_agent() -> None:
    xml = build(
        ToUserName="ww1", FromUserName="zhangsan", CreateTime="1403610513", MsgType="event",
        Event="enter_agent", EventKey="", AgentID="1000002",
    )  # fmt: skip
    event = parse_event(xml)
    assert isinstance(event, EnterAgent) and event.kind == "agent.enter"
    assert (event.from_user_name, event.event_key, event.agent_id) == ("zhangsan", "", 1000002)


def test_official_text_message_vector() -> None:
    event = parse_event(_official_plaintext())
    assert isinstance(event, TextMessage) and event.kind == "message.text"
    assert (event.to_user_name, event.from_user_name) == ("wx5823bf96d3bd56c7", "mycreate")
    assert (event.create_time, event.content, event.agent_id) == (1409659813, "hello", 218)
    assert event.msg_id == "4561255354251345929"


def test_parse_event_accepts_parsed_fields() -> None:
    fields = parse_xml(ADD_CONTACT)
    assert parse_event(fields) == parse_event(ADD_CONTACT)


def test_models_are_frozen_and_constructible_by_field_name() -> None:
    event = AddExternalContact(
        to_user_name="ww1", from_user_name="sys", create_time=1, msg_type="event",
        user_id="u", external_user_id="wm",
    )  # fmt: skip
    assert event.welcome_code == ""
    with pytest.raises(ValueError, match="frozen"):
        event.user_id = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    "xml",
    [
        contact("some_future_change"),
        build(
            ToUserName="ww1",
            FromUserName="sys",
            CreateTime="1",
            MsgType="event",
            Event="change_contact",
            ChangeType="update_tag",  # create_user and the other member/department changes are typed
            TagId="1",
        ),
        build(ToUserName="ww1", FromUserName="u1", CreateTime="1", MsgType="image", PicUrl="http://x", MsgId="42"),
        build(ToUserName="ww1", FromUserName="u1", CreateTime="1", MsgType="event", Event="click"),
    ],
    ids=["unknown-change-type", "unknown-event", "unknown-msg-type", "unknown-app-event"],
)
def test_unknown_events_are_kept(xml: str) -> None:
    event = parse_event(xml)
    assert isinstance(event, UnknownEvent) and event.kind == "unknown"
    assert event.fields == parse_xml(xml)
    assert event.create_time in (1, 1403610513)


def test_unknown_event_keeps_containers_and_a_fields_element() -> None:
    xml = (
        "<xml><ToUserName>ww</ToUserName><FromUserName>sys</FromUserName><CreateTime>5</CreateTime>"
        "<MsgType>event</MsgType><Event>batch_job_result</Event><BatchJob><JobId>j</JobId></BatchJob>"
        "<fields>x</fields></xml>"
    )
    event = parse_event(xml)
    assert isinstance(event, UnknownEvent)
    assert event.event == "batch_job_result"
    assert event.fields["BatchJob"] == [{"JobId": "j"}]
    assert event.fields["fields"] == "x"


def test_every_table_entry_has_a_kind_and_distinct_classes() -> None:
    kinds = [cls.kind for cls in EVENT_TYPES.values()]
    assert len(set(kinds)) == len(kinds) == len(set(EVENT_TYPES.values()))
    assert UnknownEvent not in EVENT_TYPES.values()


@pytest.mark.parametrize(
    ("xml", "field"),
    [
        (contact("add_external_contact").replace("1403610513", "soon"), "CreateTime"),
        (contact("add_external_contact").replace("1403610513", "1_403"), "CreateTime"),
        (contact("add_external_contact").replace("<UserID><![CDATA[zhangsan]]></UserID>", ""), "UserID"),
        (contact("add_external_contact", UserID2="x").replace("UserID2", "UserID"), "UserID"),
        (chat("update", JoinScene="often"), "JoinScene"),
        (chat("create").replace("<ChatId><![CDATA[wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA]]></ChatId>", ""), "ChatId"),
        (tag("create", Id="et1", TagType="folder"), "TagType"),
        (build(ToUserName="ww1", FromUserName="u1", CreateTime="1", MsgType="text", Content="hi"), "MsgId"),
        (build(FromUserName="u1", CreateTime="1", MsgType="mystery"), "ToUserName"),
        ("<xml><A>1</A></xml>", "ToUserName"),
    ],
    ids=["create-time-word", "create-time-underscore", "missing-user-id", "repeated-user-id", "join-scene",
         "missing-chat-id", "tag-type", "text-without-msgid", "unknown-without-header", "no-header"],
)  # fmt: skip
def test_invalid_fields_raise_xml_error_naming_the_field(xml: str, field: str) -> None:
    with pytest.raises(XmlError, match=field) as info:
        parse_event(xml)
    assert "\n" not in str(info.value)


def test_parse_event_rejects_unsafe_xml() -> None:
    with pytest.raises(XmlError, match="DOCTYPE"):
        parse_event(BILLION_LAUGHS)


# --------------------------------------------------------------------------- dedup keys


def key(xml: str) -> str:
    return header_of(parse_xml(xml)).dedup_key


def test_header_of_classifies() -> None:
    header = header_of(parse_xml(ADD_CONTACT))
    assert (header.msg_type, header.event, header.change_type) == (
        "event",
        "change_external_contact",
        "add_external_contact",
    )
    assert header.dedup_key.startswith("sys|MsgType=event|Event=change_external_contact|")


def test_message_key_is_msg_id() -> None:
    assert key(_official_plaintext()) == "msg:4561255354251345929"


@pytest.mark.parametrize("xml", [ADD_CONTACT, CHAT_UPDATE, CARD_EVENT, _official_plaintext()])
def test_same_xml_gives_same_key(xml: str) -> None:
    assert key(xml) == key(xml)
    # Formatting differences of a retry (CDATA or not, whitespace between elements) do not matter.
    assert key(xml) == key(xml.replace("\n", ""))


def test_key_same_with_and_without_cdata() -> None:
    assert key(contact("del_follow_user", cdata)) == key(contact("del_follow_user", plain))


def test_distinct_events_in_one_second_get_distinct_keys() -> None:
    two_customers = {
        key(contact("add_external_contact")),
        key(contact("add_external_contact").replace("woAJ2GCAAAXtWyujaWJHDDGi0mAAAA", "wmOther")),
    }
    assert len(two_customers) == 2
    # One member joins, then another joins the same group within the same second.
    joins = {key(members_joined(["wmA"], "v1", "v2")), key(members_joined(["wmB"], "v2", "v3"))}
    assert len(joins) == 2
    # Even without versions the member lists tell them apart.
    assert key(members_joined(["wmA"], "", "")) != key(members_joined(["wmB"], "", ""))
    add_then_del = {key(contact("add_external_contact")), key(contact("del_external_contact"))}
    assert len(add_then_del) == 2
    tags = {key(tag("update", Id="et1", TagType="tag")), key(tag("update", Id="et2", TagType="tag"))}
    assert len(tags) == 2
    clicks = {
        key(CARD_EVENT),
        key(CARD_EVENT.replace("taskid111", "taskid222")),
        key(CARD_EVENT.replace("key111", "key222")),
        key(CARD_EVENT.replace("[FromUser]", "[OtherUser]")),
    }
    assert len(clicks) == 4


def test_key_cannot_be_forged_by_separator_characters() -> None:
    a = key(contact("edit_external_contact").replace("zhangsan", "u|ExternalUserID=x"))
    b = key(contact("edit_external_contact").replace("zhangsan", "u"))
    assert a != b and "u%7CExternalUserID=x" in a


def test_long_keys_are_clipped_with_a_hash() -> None:
    assert len(key(members_joined(["wmA"], "v1", "v2"))) < MAX_KEY_CHARS  # short keys stay readable
    big = members_joined([f"wmMember{i:04d}" for i in range(200)], "v1", "v2")
    bigger = members_joined([f"wmMember{i:04d}" for i in range(199)] + ["wmMember9999"], "v1", "v2")
    assert len(key(big)) == len(key(bigger)) == MAX_KEY_CHARS
    assert key(big) == key(big)
    assert key(big) != key(bigger)
    assert key(big).startswith("sys|MsgType=event|Event=change_external_chat|ChangeType=update|")
    msg = build(ToUserName="w", FromUserName="u", CreateTime="1", MsgType="text", MsgId="9" * 600)
    assert len(key(msg)) == MAX_KEY_CHARS


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"FromUserName": "sys", "CreateTime": "1"}, "MsgType"),
        ({"MsgType": "event", "CreateTime": "1"}, "FromUserName"),
        ({"MsgType": "event", "FromUserName": "sys"}, "CreateTime"),
        ({"MsgType": "event", "FromUserName": "sys", "CreateTime": "yesterday"}, "CreateTime"),
        ({"MsgType": "event", "FromUserName": "sys", "CreateTime": ["1", "2"]}, "CreateTime"),
    ],
)
def test_header_of_rejects_missing_header(fields: dict[str, object], reason: str) -> None:
    with pytest.raises(XmlError, match=reason):
        header_of(fields)
