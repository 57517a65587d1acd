"""Models for what happens over time: group calendars, 1:1 path SOPs, key-event reminders.

Steps carry a stable ``key`` (their ``id:``, or one derived from when and what they send)
so that the idempotency key of a send survives an admin inserting a step above it.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import time, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from .expr import Condition, DateExpr, ExprError, parse_condition, parse_date_expr, parse_weekdays
from .fields import HHMM, Duration, Ident, OnHoliday, Strict, TagRef, format_hhmm


def _date_expr(value: object) -> DateExpr:
    if isinstance(value, DateExpr):
        return value
    if not isinstance(value, str):
        raise ExprError(f'expected a date expression in quotes, e.g. "payday + 1 workday", got {value!r}')
    return parse_date_expr(value)


def _condition(value: object) -> Condition:
    if isinstance(value, Condition):
        return value
    if not isinstance(value, str):
        raise ExprError(f'expected a condition in quotes, e.g. "crm.aum >= 50万", got {value!r}')
    return parse_condition(value)


DateExprField = Annotated[
    DateExpr,
    BeforeValidator(_date_expr),
    WithJsonSchema({"type": "string", "examples": ["payday + 1 workday", "day 15", "added_at + 7 days"]}),
]
ConditionField = Annotated[
    Condition,
    BeforeValidator(_condition),
    WithJsonSchema({"type": "string", "examples": ["crm.payday < crm.repayment_day"]}),
]


class TagFilter(Strict):
    """Customers having ``all`` of, ``any`` of (if given) and ``none`` of these tags."""

    all: list[TagRef] = Field(default_factory=list)
    any: list[TagRef] = Field(default_factory=list)
    none: list[TagRef] = Field(default_factory=list)

    def matches(self, tags: Collection[str]) -> bool:
        have = set(tags)
        return (
            set(self.all) <= have
            and (not self.any or bool(have.intersection(self.any)))
            and not have.intersection(self.none)
        )

    def refs(self) -> list[tuple[str, int, str]]:
        """(field, index, tag) for every tag named, for reference checks."""
        return [(f, i, t) for f in ("all", "any", "none") for i, t in enumerate(getattr(self, f))]


# --- goals ------------------------------------------------------------------------------

#: The kinds of event the CRM sends (``handlers.crm.records.EVENT_KINDS``; the playbook may not
#: import a feature, so a test keeps the two lists equal). A goal naming any other kind could
#: never be met: the CRM refuses to store it.
CrmEventKind = Literal["account.opened", "birthday", "card.activated", "interaction.call", "interaction.visit",
                       "large_transfer", "loan.drawn", "manager_change", "maturity", "payroll.credit",
                       "purchase.fund", "purchase.insurance", "purchase.wealth", "risk_expiry", "tier_down", "tier_up"]


class Goal(Strict):
    """What a step aims at, for the console's SOP effect page: a customer the step reached
    counts as converted when the CRM reports an ``event`` of this kind for them within
    ``within_days`` after the send."""

    event: CrmEventKind = Field(description="a CRM event kind, e.g. tier_up or interaction.visit")
    within_days: int = Field(ge=1, le=365, description="days after the send in which the event counts")


def _one_action(send: str | None, task: str | None) -> None:
    if (send is None) == (task is None):
        raise ValueError("give exactly one of send (a material to the group) or task (a card to the owner)")


# --- group calendars ---------------------------------------------------------------------


class GroupAction(Strict):
    """What a calendar entry does: post a material, or hand the group owner a task card."""

    id: Ident | None = None
    send: Ident | None = None
    task: Ident | None = None
    to: Literal["group", "members"] = Field(
        "group", description="group: post in the chat; members: 1:1 from the owner to members who are his contacts"
    )
    tags: TagFilter | None = Field(None, description="only with to: members")
    goal: Goal | None = Field(None, description="only with to: members: the CRM event that counts as converted")
    # A weekly post is better dropped on a holiday (next week has its own) while a one-off
    # post is better moved, so a calendar may mix both.
    on_holiday: OnHoliday | None = Field(None, description="this entry's holiday rule; else the calendar's")
    active: bool = True

    @model_validator(mode="after")
    def _check_action(self) -> GroupAction:
        _one_action(self.send, self.task)
        if self.tags is not None and self.to != "members":
            raise ValueError("tags: filters members, so it needs to: members")
        if self.task is not None and self.to != "group":
            raise ValueError("a task goes to the group owner; drop to: members")
        return self

    @field_validator("goal")
    @classmethod
    def _goal_counts_customers(cls, value: Goal | None, info: ValidationInfo) -> Goal | None:
        # A post in the chat (or a card to its owner) reaches no one customer the CRM could
        # credit with the event; checked here so that the error names goal: itself.
        if value is not None and info.data.get("to") != "members":
            raise ValueError("a goal counts customers reached 1:1, so it needs to: members (and send:)")
        return value


class CalendarStep(GroupAction):
    """Runs once per group, ``day`` days after the group was created, at ``at``."""

    day: int = Field(ge=0, le=3650)
    at: HHMM

    @property
    def key(self) -> str:
        return self.id or f"d{self.day}-{format_hhmm(self.at).replace(':', '')}-{self.send or self.task}"


class RecurringRule(GroupAction):
    """Runs every month or week, or on a cron schedule, for as long as the group lives."""

    every: Literal["month", "week"] | None = None
    on: str | None = Field(None, description='month: a date like "payday + 1 workday"; week: "wed"')
    at: HHMM | None = None
    cron: str | None = Field(None, description='5-field crontab in the policy time zone, e.g. "30 9 15 * *"')
    from_day: int = Field(0, ge=0, description="start this many days after the group was created")
    until_day: int | None = Field(None, ge=1, description="stop this many days after creation")

    _date: DateExpr | None = PrivateAttr(None)
    _weekdays: tuple[int, ...] = PrivateAttr(())

    @field_validator("on")
    @classmethod
    def _on(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Checked here as well as below so that a bad date is reported at `on:` itself.
        if value is not None:
            if info.data.get("every") == "week":
                parse_weekdays(value)
            else:
                _month_expr(value)
        return value

    @model_validator(mode="after")
    def _schedule(self) -> RecurringRule:
        if self.cron is not None:
            if self.every or self.on or self.at:
                raise ValueError("give either cron or every/on/at, not both")
            _check_cron(self.cron)
            return self
        if not (self.every and self.on and self.at):
            raise ValueError('give every (month|week), on and at, e.g. {every: month, on: "day 15", at: "10:00"}')
        if self.every == "month":
            self._date = _month_expr(self.on)
        else:
            self._weekdays = parse_weekdays(self.on)
        if self.until_day is not None and self.until_day <= self.from_day:
            raise ValueError("until_day must be after from_day")
        return self

    @property
    def date_expr(self) -> DateExpr | None:
        return self._date

    @property
    def weekdays(self) -> tuple[int, ...]:
        return self._weekdays

    @property
    def send_time(self) -> time | None:
        """The time of day this rule sends at, when it is one fixed time (for quiet-hour checks)."""
        if self.at is not None or self.cron is None:
            return self.at
        minute, hour = self.cron.split()[:2]
        if minute.isdigit() and hour.isdigit() and int(hour) < 24 and int(minute) < 60:
            return time(int(hour), int(minute))
        return None

    @property
    def key(self) -> str:
        at = format_hhmm(self.at).replace(":", "") if self.at else ""
        when = f"cron-{'_'.join(self.cron.split())}" if self.cron else f"{self.every}-{self.on}-{at}"
        return self.id or f"{when}-{self.send or self.task}".replace(" ", "")


def _month_expr(text: str) -> DateExpr:
    expr = parse_date_expr(text)
    if expr.anchor not in (None, "payday"):
        raise ValueError(f"a group calendar knows no {expr.anchor!r}; use day N, first/last workday or payday")
    return expr


def _check_cron(expr: str) -> None:
    # APScheduler parses cron for the scheduler too; using it here means "validates" == "runs".
    from apscheduler.triggers.cron import CronTrigger

    if len(expr.split()) != 5:
        raise ValueError(f"cron {expr!r} needs 5 fields: minute hour day month weekday")
    try:
        CronTrigger.from_crontab(expr, timezone="Asia/Shanghai")
    except ValueError as exc:
        raise ValueError(f"bad cron {expr!r}: {exc}") from None


class GroupCalendar(Strict):
    """sop/calendars/*.yaml: the operating calendar of one group type."""

    calendar: Ident
    name: str | None = None
    group_type: Ident
    active: bool = True
    misfire_grace: Duration | None = Field(None, description="late-run window; policy default if absent")
    on_holiday: OnHoliday | None = None
    steps: list[CalendarStep] = Field(default_factory=list)
    recurring: list[RecurringRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> GroupCalendar:
        if not self.steps and not self.recurring:
            raise ValueError("a calendar needs steps or recurring entries")
        _unique_keys([s.key for s in self.steps] + [r.key for r in self.recurring])
        return self


def _unique_keys(keys: list[str]) -> None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise ValueError(f"two entries have the key {key!r}; give one of them an id:")
        seen.add(key)


# --- 1:1 paths ---------------------------------------------------------------------------


class PathActions(Strict):
    """What a path step does for one customer; several actions may go together."""

    send: Ident | None = Field(None, description="material sent 1:1 by the customer's manager")
    allow_select: bool = Field(True, description="the manager may untick customers before sending")
    task: Ident | None = Field(None, description="material shown to the manager as a task card")
    script: Ident | None = Field(None, description="with task: the message the manager sends the customer "
                                                   "with one tap in the chat sidebar (counts as delivered)")
    tag: list[TagRef] = Field(default_factory=list, description="tags to add")
    untag: list[TagRef] = Field(default_factory=list, description="tags to remove")

    def has_action(self) -> bool:
        return bool(self.send or self.task or self.tag or self.untag)

    @field_validator("script")
    @classmethod
    def _script_needs_task(cls, value: str | None, info: ValidationInfo) -> str | None:
        # A script is offered beside the task's card; without a card nobody is asked to send it.
        if value is not None and not info.data.get("task"):
            raise ValueError("a script is the suggested message of a task card, so it needs task:")
        return value


class Branch(PathActions):
    """``if:`` a condition (first match wins), or ``else: true`` as the last branch."""

    when: ConditionField | None = Field(None, alias="if")
    otherwise: bool = Field(False, alias="else")

    @model_validator(mode="after")
    def _shape(self) -> Branch:
        if (self.when is None) == (not self.otherwise):
            raise ValueError('a branch has either if: "condition" or else: true')
        if not self.has_action():
            raise ValueError("a branch needs an action: send, task, tag or untag")
        return self


class PathStep(PathActions):
    id: Ident | None = None
    on: DateExprField = Field(description='e.g. "payday + 1 workday", "added_at + 7 days"')
    at: HHMM
    branches: list[Branch] = Field(default_factory=list)
    goal: Goal | None = Field(None, description="the CRM event that counts as converted (SOP effect page)")
    active: bool = True

    @model_validator(mode="after")
    def _shape(self) -> PathStep:
        if self.on.anchor is None:
            raise ValueError(f"{self.on.text!r} is not tied to the customer; use an anchor such as payday or added_at")
        if self.branches and self.has_action():
            raise ValueError("put the actions inside branches, or drop branches")
        if not self.branches and not self.has_action():
            raise ValueError("a step needs an action (send, task, tag, untag) or branches")
        for i, b in enumerate(self.branches):
            if b.otherwise and i != len(self.branches) - 1:
                raise ValueError("else: must be the last branch")
        return self

    @property
    def key(self) -> str:
        what = self.send or self.task or "branches"
        return self.id or f"{self.on.text}-{format_hhmm(self.at).replace(':', '')}-{what}".replace(" ", "")


class Audience(TagFilter):
    """Who enters a path: tag filter plus an optional CRM condition."""

    condition: ConditionField | None = Field(None, alias="if")
    stage_entered: Ident | None = Field(
        None, description="customers who entered this lifecycle stage (sop/lifecycle.yaml); steps count from "
                          "stage_entered, e.g. on: \"stage_entered + 3 days\"")


class PathSop(Strict):
    """sop/paths/*.yaml: a 1:1 journey for customers with a tag combination."""

    path: Ident
    name: str = Field(min_length=1)
    active: bool = True
    when: Audience
    steps: list[PathStep] = Field(min_length=1)

    @model_validator(mode="after")
    def _anchor(self) -> PathSop:
        anchors = {s.on.anchor for s in self.steps}
        if len(anchors) > 1:
            raise ValueError(f"all steps of a path count from one date; found {', '.join(sorted(map(str, anchors)))}")
        if (self.when.stage_entered is not None) != (anchors == {"stage_entered"}):
            raise ValueError("a path on when: {stage_entered: …} counts its steps from stage_entered, and only it may")
        _unique_keys([s.key for s in self.steps])
        return self

    @property
    def anchor(self) -> str:
        """The customer date every step counts from (``payday``, ``added_at`` ...)."""
        anchor = self.steps[0].on.anchor
        assert anchor is not None
        return anchor


# --- reminders ---------------------------------------------------------------------------

ReminderKind = Literal[
    "maturity", "large_transfer", "birthday", "tier_up", "tier_down", "risk_expiry", "no_contact", "manager_change",
    "churn_risk",
]
Button = Literal["done", "snooze", "not_relevant"]

# Which parameter each kind needs; every other parameter is refused for it.
_KIND_PARAMS: dict[str, str | None] = {
    "maturity": "days_before",
    "birthday": "days_before",
    "risk_expiry": "days_before",
    "large_transfer": "threshold",
    "no_contact": "days",
    "tier_up": None,
    "tier_down": None,
    "manager_change": None,
    "churn_risk": None,  # which stages are a risk is sop/lifecycle.yaml's to say (churn_risk: true)
}


def _amount(value: Any) -> Any:
    if isinstance(value, str) and value.endswith("万"):
        try:
            return float(value[:-1]) * 10_000
        except ValueError:
            pass
    return value


# The schema says what the loader takes (a number or "50万"); gt inside, so it becomes exclusiveMinimum.
Amount = Annotated[float, Field(gt=0), BeforeValidator(
    _amount, json_schema_input_type=Annotated[float, Field(gt=0)] | Annotated[str, Field(pattern=r"^\d+(\.\d+)?万$")])]


class Reminder(Strict):
    """A key-event reminder: a task card to the customer's manager."""

    on: ReminderKind
    name: str = Field(min_length=1)
    active: bool = True
    days_before: int | None = Field(None, ge=0, le=365)
    threshold: Amount | None = Field(None, description="yuan; 50万 ok")
    days: int | None = Field(None, ge=1, le=3650, description="no_contact: days without a message")
    at: HHMM = Field(time(9, 0), description="delivery time for date-based reminders")
    card: str = Field(min_length=1, description="task card text (template, shown to the manager)")
    script: Ident | None = Field(None, description="suggested message material for the customer")
    buttons: list[Button] = Field(default_factory=lambda: list[Button](["done", "snooze", "not_relevant"]))
    snooze: Duration = Field(timedelta(days=1))
    escalate_after: Duration | None = Field(None, description="unanswered this long → team lead")

    @model_validator(mode="after")
    def _params(self) -> Reminder:
        needed = _KIND_PARAMS[self.on]
        for param in ("days_before", "threshold", "days"):
            given = getattr(self, param) is not None
            if param == needed and not given:
                raise ValueError(f"a {self.on} reminder needs {param}:")
            if param != needed and given:
                raise ValueError(f"{param}: does not apply to a {self.on} reminder")
        if "done" not in self.buttons:
            raise ValueError("buttons must include done")
        if len(set(self.buttons)) != len(self.buttons):
            raise ValueError("buttons are listed twice")
        return self


class RemindersFile(Strict):
    reminders: dict[Ident, Reminder]
