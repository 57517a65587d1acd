"""State of the campaigns feature: the experiments in force and who was exposed to which arm.

Declared as the campaigns feature's ``models`` (``handlers/campaigns/feature.py``); migrations
``campaigns_0001`` … ``campaigns_0003`` (Moments follow-up).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from scrm.adapters.db.base import Base, BigId, JsonDict


class Experiment(Base):
    """One experiment as last read from ``sop/experiments/*.yaml``.

    Kept in the database so that every instance plans with the same definition, and so that the
    report still knows an experiment (its goal, its planned sample) after its file is removed
    (``active`` false: no longer split, still reported).
    """

    __tablename__ = "experiment"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(128))  # path:<path>
    step: Mapped[str] = mapped_column(String(256))  # the step's key
    spec: Mapped[JsonDict] = mapped_column(default=dict)  # see handlers.campaigns.experiments.to_spec
    origin: Mapped[str] = mapped_column(String(256), default="")  # sop/experiments/x.yaml:1
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime]


class ExperimentExposure(Base):
    """A customer's first exposure to an experiment: the variant's send queued, or the holdout's
    skip recorded. One row per experiment and customer (their first arm stays theirs)."""

    __tablename__ = "experiment_exposure"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    experiment: Mapped[str] = mapped_column(String(64))
    customer: Mapped[str] = mapped_column(String(128))  # external_userid
    variant: Mapped[str] = mapped_column(String(64))  # a variant's name, or "holdout"
    at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("experiment", "customer", name="uq_experiment_exposure"),
                      Index("ix_experiment_exposure_variant", "experiment", "variant"))


class Campaign(Base):
    """One campaign as last read from ``sop/campaigns/*.yaml`` (every instance plans with the same
    definition; the report still knows a campaign after its file is removed: ``active`` false)."""

    __tablename__ = "campaign"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    spec: Mapped[JsonDict] = mapped_column(default=dict)  # see handlers.campaigns.campaign.to_spec
    origin: Mapped[str] = mapped_column(String(256), default="")
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime]


class CampaignTouch(Base):
    """What one channel of a campaign did for one customer, written by the SOP engine's executor
    in the transaction that queues the send: ``sent`` (a message queued or a card issued),
    ``holdout`` (kept out by the experiment) or ``skipped`` (the contact policy said no, with its
    reason). One row per campaign, channel and customer: a replay adds nothing."""

    __tablename__ = "campaign_touch"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    campaign: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    customer: Mapped[str] = mapped_column(String(128))  # external_userid
    manager: Mapped[str] = mapped_column(String(64), default="")  # the sender, or the primary manager
    outcome: Mapped[str] = mapped_column(String(16))  # sent | holdout | skipped
    reason: Mapped[str | None] = mapped_column(String(256), default=None)
    at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("campaign", "channel", "customer", name="uq_campaign_touch"),
                      Index("ix_campaign_touch_customer", "campaign", "customer"))


class CampaignMoment(Base):
    """One Moments channel of a campaign, once its add_moment_task is queued (same transaction),
    then followed up: the job's result (``moment_id``, senders WeCom refused) and which of the
    managers asked have published it (``get_moment_task``). A post reaches a manager's customers
    only once that manager published it: their touches turn from ``asked`` to ``visible`` then.

    ``state``: ``queued`` (the outbox has not sent it yet), ``running`` (job not done, or
    publishing still followed), ``done`` (everyone published, or the follow-up window ended),
    ``failed`` (the call or the job failed: ``error``)."""

    __tablename__ = "campaign_moment"

    outbox_key: Mapped[str] = mapped_column(String(512), primary_key=True)
    campaign: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    asked: Mapped[list[str]] = mapped_column(JSON, default=list)  # the senders in visible_range
    jobid: Mapped[str | None] = mapped_column(String(128), default=None)
    moment_id: Mapped[str | None] = mapped_column(String(128), default=None)
    invalid: Mapped[list[str]] = mapped_column(JSON, default=list)  # senders WeCom refused (left, unknown)
    published: Mapped[JsonDict] = mapped_column(default=dict)  # userid → first seen published (ISO)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    error: Mapped[str | None] = mapped_column(String(512), default=None)
    created_at: Mapped[datetime]
    checked_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (Index("ix_campaign_moment_campaign", "campaign", "channel"),)
