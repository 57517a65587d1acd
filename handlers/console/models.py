"""Console tables: signed-in sessions (server side, so signing out or removing someone's role
ends their access at once) and the audit log of everything done in the console."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from scrm.adapters.db.base import Base, BigId, JsonDict


class ConsoleSession(Base):
    """One browser's session. The cookie carries a random token; only its SHA-256 is stored, so
    a copy of the database opens no session."""

    __tablename__ = "console_session"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[JsonDict]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class ConsoleAudit(Base):
    """One thing a person did in the console (signed in, looked at a page, replayed an event)."""

    __tablename__ = "console_audit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))  # a WeCom userid, "local:admin", or "" (not signed in)
    role: Mapped[str] = mapped_column(String(32), default="")
    action: Mapped[str] = mapped_column(String(64))  # signin | signin_refused | view | replay | ...
    target: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[JsonDict] = mapped_column(default=dict)
    remote: Mapped[str] = mapped_column(String(64), default="")

    __table_args__ = (Index("ix_console_audit_at", "at"), Index("ix_console_audit_actor", "actor", "at"))


class ConsoleRollup(Base):
    """One figure of one manager on one day (the bank's local day): the cockpit sums these over a
    period and a scope (through ``member.department``) instead of scanning the raw rows.

    ``metric`` names what is counted (``added``, ``lost``, ``reach_customer`` …, see
    :mod:`handlers.console.rollup`); ``key`` splits it (a channel, a skip reason, a customer id
    for figures counted as distinct over a period). ``userid`` "" holds what belongs to no
    manager (an SOP step for a customer nobody follows): it counts for the whole bank only."""

    __tablename__ = "console_rollup"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    userid: Mapped[str] = mapped_column(String(64), primary_key=True)
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)

    # ix_console_rollup_metric_key: a customer's (a key's) rows of a distinct metric, for the
    # cockpit's check of today's live keys against the stored days (an index probe per key, not
    # a scan of the period's rows); userid in it so the check reads the index only.
    __table_args__ = (Index("ix_console_rollup_user_day", "userid", "day"),
                      Index("ix_console_rollup_metric_key", "metric", "key", "day", "userid"))


class ConsoleRollupDay(Base):
    """A day whose roll-up is stored: when, and how many of its task cards were still unsettled
    (open, escalated, deferred): such a day is rolled up again every night until they are."""

    __tablename__ = "console_rollup_day"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    rolled_at: Mapped[datetime]
    unsettled: Mapped[int] = mapped_column(Integer, default=0)


class ConsolePeriodCache(Base):
    """The stored days' part of a period's figures in one scope, as the cockpit aggregated them
    (:mod:`handlers.console.periodcache`): a view of the same period reads this row instead of
    aggregating hundreds of thousands of roll-up rows again. ``key`` is the SHA-256 of what was
    asked (the scope's managers, the days, the grouping); ``fingerprint`` of when each of those
    days was rolled up — a row whose days were rolled up again since is not used. Storing a day's
    roll-up deletes the rows covering it, and the nightly job empties the table (tomorrow's views
    ask for other days) before computing the whole bank's standard periods again."""

    __tablename__ = "console_period_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    first: Mapped[date] = mapped_column(Date)
    last: Mapped[date] = mapped_column(Date)
    fingerprint: Mapped[str] = mapped_column(String(64))
    data: Mapped[JsonDict]


class ConsoleEffectRow(Base):
    """One target of one SOP step on one planned day, as the effect page counts it
    (:mod:`handlers.console.effectstore`): who it belongs to and how far it got, computed from
    the raw rows by the same code as the live page. ``skip`` is the reason kind when skipped."""

    __tablename__ = "console_effect_row"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    source: Mapped[str] = mapped_column(String(128), primary_key=True)
    step: Mapped[str] = mapped_column(String(256), primary_key=True)
    target: Mapped[str] = mapped_column(String(128), primary_key=True)
    manager: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime | None] = mapped_column(default=None)
    sent: Mapped[bool] = mapped_column(default=False)
    skip: Mapped[str | None] = mapped_column(String(32), default=None)
    delivered: Mapped[bool] = mapped_column(default=False)
    opened: Mapped[bool] = mapped_column(default=False)
    converted: Mapped[bool] = mapped_column(default=False)

    # ix_console_effect_row_target: the stored rows of the targets a page view saw change (today's
    # occurrences, opens and conversions since the build), an index probe per target.
    # ix_console_effect_row_manager_day: a scope's rows of a period (a team's 30 days are ~1/18 of
    # the bank's), not the period's rows of every manager filtered.
    __table_args__ = (Index("ix_console_effect_row_target", "target", "day"),
                      Index("ix_console_effect_row_manager_day", "manager", "day"))


class ConsoleEffectDay(Base):
    """A planned day whose effect rows are stored: when, for which goals (the SHA-256 of the
    playbook's goals: a changed goal makes the day's conversions unusable), and the last id of
    ``occurrence``, ``radar_click`` and ``crm_event`` read before the build — what came after is
    read live on top (:mod:`handlers.console.effectstore`)."""

    __tablename__ = "console_effect_day"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    built_at: Mapped[datetime]
    goals: Mapped[str] = mapped_column(String(64))
    occurrence_id: Mapped[int] = mapped_column(BigInteger, default=0)
    click_id: Mapped[int] = mapped_column(BigInteger, default=0)
    crm_event_id: Mapped[int] = mapped_column(BigInteger, default=0)
class ConsoleOutlookRun(Base):
    """One computation of the SOP calendar's outlook (:mod:`handlers.console.outlook`): the
    planner run over ``days`` days from ``start`` (the bank's local day) with the playbook
    ``version`` that was running, at ``computed_at``. ``reasons`` keeps the first raw skip reason
    per (day, source, step, skip kind) for the page's tooltips: ``{"reasons": [[day, source, step, kind,
    reason], …]}``. One row per (start, days, version): a second job for the same is a no-op."""

    __tablename__ = "console_outlook_run"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    start: Mapped[date] = mapped_column(Date)
    days: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(64))
    computed_at: Mapped[datetime]
    reasons: Mapped[JsonDict]  # {"reasons": [[day, source, step, kind, reason], …]}

    __table_args__ = (UniqueConstraint("start", "days", "version", name="uq_console_outlook_run"),)


class ConsoleOutlook(Base):
    """How many sends (or task cards, or skipped targets) one step of one run makes on one day, per
    sender: ``owner`` is the group owner or the customer's manager ("" when nobody is known) or
    ``*`` for the whole bank's total of the same (WeCom userids have no ``*``), so the whole bank
    reads its figures without summing every manager's. ``outcome`` is a kind (group, private,
    task, tag), ``carried`` or ``skip:<kind>``. The primary key leads with (run, owner): a
    scope's view is an index range per manager."""

    __tablename__ = "console_outlook"

    run_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    at: Mapped[str] = mapped_column(String(5), primary_key=True)
    source: Mapped[str] = mapped_column(String(128), primary_key=True)
    step: Mapped[str] = mapped_column(String(128), primary_key=True)
    material: Mapped[str] = mapped_column(String(128), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
