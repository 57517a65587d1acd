"""Typed internal events: one class per kind, owned by one feature; the stored JSON is the same
``InternalEvent`` envelope as ever (rows already in a database still parse, new rows stay
readable by the old reader); unknown kinds stay untyped; a payload that does not fit is that
row's handler error (retried, then dead-lettered); a kind declared twice refuses to start."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from sqlalchemy import select

from handlers.compliance.events import TrailPurge
from handlers.console.jobs import ConsoleDigestDue, ConsoleOutlookDue, ConsoleRollupDue
from handlers.console.segjobs import ConsoleSegmentsDue
from handlers.contacts.events import ChannelTagsDue
from handlers.crm.api import CrmKeyEvent
from handlers.crm.events import CrmChanged, CrmNightly
from handlers.feedback.events import FeedbackAlertDue, FeedbackAnswered
from handlers.groups.events import GroupLifetimeDue
from handlers.lifecycle.events import LifecycleNightly, StageEntered
from handlers.membership.events import LevelChanged, MembershipNightly
from handlers.radar.events import RadarClickEvent, RadarDigest
from handlers.sop.events import (
    CrmKeyDeferred,
    SopCarryDue,
    SopComplianceNotice,
    SopDatedReminder,
    SopDue,
    SopEscalateDue,
    SopFollowup,
    SopMomentPoll,
    SopReminderScan,
    SopSnoozeDue,
)
from handlers.staff.events import StaffSync
from handlers.succession.events import SuccessionFollow, SuccessionMove, SuccessionSweep
from scrm.kernel.clock import FakeClock
from scrm.kernel.dispatch import Router
from scrm.kernel.events import EventKinds, EventPayloadError, Internal, InternalEvent, Scheduled
from scrm.kernel.feature import Feature, FeatureError, compose
from scrm.kernel.models import InboxEvent
from scrm.kernel.scheduler import Scheduler, TriggerSpec
from scrm.main import FEATURES, KINDS
from tests.conftest import make_settings
from tests.support.service import drain, running_service

AT = "2026-11-02T01:30:00Z"  # as InternalEvent.model_dump_json writes ``at``
FIRE = "2026-11-02T01:30:00+00:00"  # as the scheduler writes ``fire_time`` (datetime.isoformat)


def fired(job_key: str, **payload: Any) -> dict[str, Any]:
    return {**payload, "job_key": job_key, "fire_time": FIRE}


CRM_PAYLOAD = {"event_id": "e1", "crm_id": "C1", "kind": "maturity", "at": "2026-11-02T09:00:00+08:00",
               "payload": {"maturity_date": "2026-11-30", "product_name": "稳享90天", "amount": 50000.0},
               "external_userid": None}

# One stored row per shipped kind (and variant), as the producers before typed events wrote them.
LEGACY_ROWS: list[tuple[str, str, dict[str, Any]]] = [
    ("lifecycle", "contact.channel_tags", {"userid": "zhangwei", "external_userid": "wmA", "tags": ["渠道/代发开卡"],
                                           "channel": "payroll-onboarding", "subject": ["customer", "wmA"]}),
    ("crm", "crm.changed", {"crm_ids": ["C1", "C2"], "generation": "c0123456789abcdef"}),
    ("crm", "crm.event", CRM_PAYLOAD),
    ("crm", "crm.nightly", {"generation": "t12", "after": 0}),
    ("scheduler", "crm.nightly", fired("crm.nightly")),
    ("scheduler", "crm.nightly", fired("crm.nightly.wait:n202611020230", generation="n202611020230", after=500)),
    ("scheduler", "group.lifetime_due", fired("group_lifetime:wr1", chat_id="wr1", subject=["group", "wr1"])),
    ("radar", "radar.click", {"token_id": "ab" * 16, "material": "m-fund", "sender": "zhangwei", "occurrence": None,
                              "customer": "wmA", "openid": None, "via": "token", "subject": ["customer", "wmA"]}),
    ("radar", "radar.click", {"token_id": "cd" * 16, "material": "m-fund", "sender": "zhangwei",
                              "occurrence": "sop:x", "customer": None, "openid": None, "via": "token"}),
    ("scheduler", "radar.digest", fired("radar:digest")),
    ("scheduler", "radar.digest", {}),
    ("scheduler", "sop.due", fired("sop.due:09:30", at="09:30")),
    ("scheduler", "sop.reminders", fired("sop.reminders:birthday", reminder="birthday", at="09:00")),
    ("scheduler", "sop.reminder", fired("sop.reminder:maturity:wmA:2026-11-30", reminder="maturity",
                                        external_userid="wmA", occurrence="2026-11-30",
                                        extra={"event_id": "e1", "amount": 50000.0})),
    ("scheduler", "sop.followup", fired("sop.followup")),
    ("scheduler", "sop.compliance", fired("sop.compliance")),
    ("scheduler", "sop.snooze", fired("sop.snooze:t1", task_id="t1")),
    ("scheduler", "sop.escalate", fired("sop.escalate:t1", task_id="t1")),
    ("scheduler", "sop.carry", fired("sop.carry:t1", task_id="t1")),
    ("scheduler", "sop.crm_deferred", fired("sop.crm_deferred:e1:maturity", **CRM_PAYLOAD)),
    ("scheduler", "sop.moment", fired("sop.moment:sop:campaign:c:post:moment:2026-11-03",
                                      key="sop:campaign:c:post:moment:2026-11-03")),
    ("scheduler", "staff.sync", fired("staff.nightly")),
    ("scheduler", "console.rollup", fired("console.rollup")),
    ("scheduler", "succession.sweep", fired("succession.sweep")),
    ("scheduler", "succession.follow", fired("succession.follow:r:lina:7", batch_id="r:lina:7")),
    ("succession", "succession.move", {"request_id": "R1", "handover": "zhangwei", "takeover": "lina",
                                       "external_userids": ["wm1"], "message": "", "origin": "crm"}),
    ("scheduler", "console.digest", fired("console.digest")),
    ("scheduler", "console.outlook", fired("console.outlook.now", version="6ac6f1c009ab")),
    ("scheduler", "console.segments", fired("console.segments.now", only_if_missing=True)),
    ("scheduler", "compliance.purge", fired("compliance.purge")),
    ("scheduler", "lifecycle.nightly", fired("lifecycle.nightly", cursor="", day="")),
    ("lifecycle", "lifecycle.nightly", {"cursor": "wmA", "day": "2026-11-02"}),
    ("lifecycle", "lifecycle.stage_entered", {"external_userid": "wmA", "stage": "silent", "previous": "active",
                                              "day": "2026-11-02", "churn_risk": True}),
    ("scheduler", "membership.nightly", fired("membership.nightly", cursor="", day="")),
    ("membership", "membership.nightly", {"cursor": "wmA", "day": "2026-11-02"}),
    ("membership", "membership.level_changed", {"external_userid": "wmA", "previous": "new", "level": "core",
                                                "direction": "up", "cause": "crm:e1", "day": "2026-11-02"}),
    ("feedback", "feedback.answered", {"answer_id": 7, "survey": "nps-onboarding", "score": 3,
                                       "category": "detractor", "subject": ["customer", "wmA"]}),
    ("scheduler", "feedback.alert_due", fired("feedback.alert:7", answer_id=7)),
]

SHIPPED = {
    "contact.channel_tags": ChannelTagsDue, "crm.changed": CrmChanged, "crm.event": CrmKeyEvent,
    "crm.nightly": CrmNightly, "group.lifetime_due": GroupLifetimeDue, "radar.click": RadarClickEvent,
    "radar.digest": RadarDigest, "sop.due": SopDue, "sop.reminders": SopReminderScan,
    "sop.reminder": SopDatedReminder, "sop.followup": SopFollowup, "sop.compliance": SopComplianceNotice,
    "sop.snooze": SopSnoozeDue, "sop.escalate": SopEscalateDue, "sop.carry": SopCarryDue,
    "sop.crm_deferred": CrmKeyDeferred, "sop.moment": SopMomentPoll, "staff.sync": StaffSync,
    "console.rollup": ConsoleRollupDue,
    "succession.sweep": SuccessionSweep, "succession.follow": SuccessionFollow, "succession.move": SuccessionMove,
    "console.digest": ConsoleDigestDue, "console.outlook": ConsoleOutlookDue, "console.segments": ConsoleSegmentsDue,
    "compliance.purge": TrailPurge,
    "lifecycle.nightly": LifecycleNightly,
    "lifecycle.stage_entered": StageEntered, "membership.nightly": MembershipNightly,
    "membership.level_changed": LevelChanged, "feedback.answered": FeedbackAnswered,
    "feedback.alert_due": FeedbackAlertDue,
}


def legacy_json(source: str, kind: str, payload: dict[str, Any]) -> str:
    return json.dumps({"source": source, "kind": kind, "at": AT, "payload": payload}, ensure_ascii=False)


def test_the_shipped_features_declare_each_kind_once() -> None:
    assert {cls.KIND: cls for cls in KINDS} == SHIPPED
    assert {kind for _, kind, _ in LEGACY_ROWS} == set(SHIPPED)  # a new kind adds a row above


@pytest.mark.parametrize(("source", "kind", "payload"), LEGACY_ROWS,
                         ids=[f"{k}-{i}" for i, (_, k, _) in enumerate(LEGACY_ROWS)])
def test_a_stored_row_of_each_kind_round_trips(source: str, kind: str, payload: dict[str, Any]) -> None:
    raw = legacy_json(source, kind, payload)
    typed = KINDS.parse_json(raw)
    assert type(typed) is SHIPPED[kind]
    assert isinstance(typed, Internal) and typed.kind == kind and typed.source == source
    # Written back, it is the same JSON: same keys, same values (the old reader reads it).
    assert json.loads(typed.stored().model_dump_json()) == json.loads(raw)
    assert InternalEvent.model_validate_json(typed.stored().model_dump_json()).payload == payload
    if isinstance(typed, Scheduled) and "fire_time" in payload:
        assert typed.fire_time == datetime(2026, 11, 2, 1, 30, tzinfo=UTC) and typed.job_key == payload["job_key"]


def test_typed_attributes_read_the_stored_payload() -> None:
    event = KINDS.parse_json(legacy_json("crm", "crm.event", CRM_PAYLOAD))
    assert isinstance(event, CrmKeyEvent)
    assert (event.event_id, event.crm_id, event.event_kind, event.external_userid) == ("e1", "C1", "maturity", None)
    assert event.occurred_at.isoformat() == "2026-11-02T09:00:00+08:00"
    assert event.details["maturity_date"] == "2026-11-30"
    due = KINDS.parse_json(legacy_json("scheduler", "sop.due", fired("sop.due:09:30", at="09:30")))
    assert isinstance(due, SopDue) and (due.slot.hour, due.slot.minute, due.day) == (9, 30, None)
    deferred = KINDS.parse_json(legacy_json("scheduler", "sop.crm_deferred", fired("k", **CRM_PAYLOAD)))
    assert isinstance(deferred, CrmKeyDeferred) and deferred.event_kind == "maturity" and deferred.job_key == "k"


def test_a_producer_writes_what_the_old_reader_reads() -> None:
    at = datetime(2026, 11, 2, 1, 30, tzinfo=UTC)
    changed = CrmChanged(at=at, crm_ids=("C1",), generation="c1")
    assert json.loads(changed.stored().model_dump_json()) == {
        "source": "crm", "kind": "crm.changed", "at": AT, "payload": {"crm_ids": ["C1"], "generation": "c1"}}
    # What the producer gives is stored (its own None too); defaults it leaves (the scheduler's
    # job_key and fire_time) are not.
    nightly = CrmNightly(at=at, generation="t1", after=0)
    assert nightly.stored().payload == {"generation": "t1", "after": 0}
    key = CrmKeyEvent(at=at, event_id="e1", crm_id="C1", event_kind="tier_up",
                      occurred_at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC), details={"tier": "V2"}, external_userid=None)
    assert key.stored().payload == {"event_id": "e1", "crm_id": "C1", "kind": "tier_up",
                                    "at": "2026-11-02T09:00:00+00:00", "payload": {"tier": "V2"},
                                    "external_userid": None}


def test_an_unknown_kind_stays_an_untyped_event() -> None:
    raw = legacy_json("elsewhere", "elsewhere.ping", {"who": "zhangwei"})
    event = KINDS.parse_json(raw)
    assert type(event) is InternalEvent and event.kind == "elsewhere.ping" and event.payload == {"who": "zhangwei"}
    assert EventKinds().parse_json(legacy_json("crm", "crm.changed", {"crm_ids": 3})) == InternalEvent(
        source="crm", kind="crm.changed", at=datetime(2026, 11, 2, 1, 30, tzinfo=UTC), payload={"crm_ids": 3})


def test_a_payload_that_does_not_fit_names_the_kind_and_the_keys() -> None:
    with pytest.raises(EventPayloadError) as err:
        KINDS.parse_json(legacy_json("crm", "crm.event", {"event_id": 7, "crm_id": "C1", "at": "2026-11-02"}))
    assert str(err.value) == ("crm.event: payload does not fit CrmKeyEvent: event_id: Input should be a valid string "
                              "(got 7); kind: Field required")


async def test_a_bad_payload_is_that_rows_handler_error_retried_then_dead(db_url: str) -> None:
    seen: list[Any] = []
    router = Router("probe")

    @router.on(CrmChanged)
    async def on_changed(event: CrmChanged) -> None:
        seen.append(event)

    @router.on("test.other")
    async def on_other(event: InternalEvent) -> None:
        seen.append(event)

    clock = FakeClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
    settings = make_settings(db_url, inbox={"max_attempts": 2, "backoff_base_s": 1.0})
    async with running_service(settings, clock=clock, routers=[router]) as (runtime, _):
        inbox = runtime.inbox
        bad = InternalEvent(source="crm", kind="crm.changed", at=clock.now(), payload={"crm_ids": "C1",
                                                                                        "generation": "c1"})
        good = CrmChanged(at=clock.now(), crm_ids=("C2",), generation="c2")
        other = InternalEvent(source="test", kind="test.other", at=clock.now(), payload={"n": 1})
        for key, event in (("bad", bad), ("good", good), ("other", other)):
            assert await inbox.put_internal(event, key)
        outcome = await inbox.process_due(runtime.dispatcher, runtime.handler_context())
        assert (outcome.done, outcome.retried, outcome.dead) == (2, 1, 0)
        assert seen == [good, other]
        async with runtime.sessions() as s:
            row = await s.scalar(select(InboxEvent).where(InboxEvent.dedup_key == "crm:bad"))
        assert row is not None and (row.status, row.attempts) == ("pending", 1)
        assert row.last_error == ("EventPayloadError: crm.changed: payload does not fit CrmChanged: crm_ids: "
                                  "Input should be a valid tuple (got 'C1')")
        clock.advance(seconds=5)
        outcome = await inbox.process_due(runtime.dispatcher, runtime.handler_context())
        assert (outcome.done, outcome.retried, outcome.dead) == (0, 0, 1)
        async with runtime.sessions() as s:
            statuses = dict((await s.execute(select(InboxEvent.dedup_key, InboxEvent.status))).all())
        assert statuses == {"crm:bad": "dead", "crm:good": "done", "test:other": "done"}
        assert len(seen) == 2


async def test_a_row_that_is_no_event_is_dead_at_once(sqlite_url: str) -> None:
    async with running_service(make_settings(sqlite_url), routers=[]) as (runtime, _):
        inbox = runtime.inbox
        assert await inbox.writer.put(inbox._row("crm", "crm:broken", "{not json", "internal", "crm.changed", ""))
        outcome = await inbox.process_due(runtime.dispatcher, runtime.handler_context())
        assert (outcome.done, outcome.retried, outcome.dead) == (0, 0, 1)


async def test_a_job_fires_the_typed_class_of_its_kind(db_url: str) -> None:
    got: list[GroupLifetimeDue] = []
    router = Router("probe")

    @router.on(GroupLifetimeDue)
    async def on_due(event: GroupLifetimeDue) -> None:
        got.append(event)

    clock = FakeClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
    due = datetime(2026, 11, 2, 1, 30, tzinfo=UTC)
    async with running_service(make_settings(db_url), clock=clock, routers=[router]) as (runtime, _):
        sched: Scheduler = runtime.scheduler
        async with runtime.sessions() as s, s.begin():
            await sched.put_job(s, "group_lifetime:wr1", GroupLifetimeDue, TriggerSpec(type="date", at=due),
                                payload={"chat_id": "wr1", "subject": ["group", "wr1"]})
            # A row from before typed events names its kind as a string: it fires the same class.
            await sched.put_job(s, "group_lifetime:wr2", "group.lifetime_due", TriggerSpec(type="date", at=due),
                                payload={"chat_id": "wr2", "subject": ["group", "wr2"]})
            with pytest.raises(EventPayloadError, match="chat_id: Field required"):
                await sched.put_job(s, "group_lifetime:bad", GroupLifetimeDue, TriggerSpec(type="date", at=due),
                                    payload={"subject": ["group", "wr3"]})
        clock.set(due)
        assert await sched.tick() == 2
        await drain(runtime)
    assert sorted((e.chat_id, e.job_key, e.fire_time, e.source) for e in got) == [
        ("wr1", "group_lifetime:wr1", due, "scheduler"), ("wr2", "group_lifetime:wr2", due, "scheduler")]


class Ping(Internal):
    KIND: ClassVar[str] = "toy.ping"
    SOURCE: ClassVar[str] = "toy"


class OtherPing(Internal):
    KIND: ClassVar[str] = "toy.ping"
    SOURCE: ClassVar[str] = "other"


def test_two_features_declaring_one_kind_refuse_to_start() -> None:
    with pytest.raises(FeatureError, match=re.escape("event kind 'toy.ping' is declared by feature 'a' (Ping) and by "
                                                     "feature 'b' (OtherPing)")):
        compose((Feature("a", events=(Ping,)), Feature("b", events=(OtherPing,))))
    with pytest.raises(FeatureError, match=re.escape("declared by feature 'a' (Ping) and by feature 'b' (Ping)")):
        compose((Feature("a", events=(Ping,)), Feature("b", events=(Ping,))))
    with pytest.raises(FeatureError, match=re.escape("'crm.changed' is declared by feature 'crm'")):
        compose((*FEATURES, Feature("copycat", events=(CrmChanged,))))


def test_a_handler_of_an_undeclared_or_string_kind_refuses_to_start() -> None:
    typed, by_string = Router("typed"), Router("by_string")

    @typed.on(Ping)
    async def on_ping(event: Ping) -> None: ...

    @by_string.on("toy.ping")
    async def on_ping_text(event: InternalEvent) -> None: ...

    with pytest.raises(FeatureError, match=r"feature 'a': .*on_ping handles Ping, an event kind no listed feature"):
        compose((Feature("a", router=typed),))
    assert compose((Feature("a", router=typed, events=(Ping,)),))
    string = "handles 'toy.ping' by its string; register it with @router.on(Ping)"
    with pytest.raises(FeatureError, match=re.escape(string)):
        compose((Feature("a", events=(Ping,)), Feature("b", router=by_string)))
    with pytest.raises(FeatureError, match="declares no KIND"):
        compose((Feature("a", events=(Internal,)),))
