"""campaigns: campaign_moment — a campaign's Moments post and who published it

Revision ID: campaigns_0003
Revises: console_0006
Create Date: 2026-12-07 09:00:00

Written by hand (the lead regenerates migrations from scrm.adapters.db.models*).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import scrm.adapters.db.types

revision = 'campaigns_0003'
down_revision = "console_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('campaign_moment',
    sa.Column('outbox_key', sa.String(length=512), nullable=False),
    sa.Column('campaign', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=64), nullable=False),
    sa.Column('asked', sa.JSON(), nullable=False),
    sa.Column('jobid', sa.String(length=128), nullable=True),
    sa.Column('moment_id', sa.String(length=128), nullable=True),
    sa.Column('invalid', sa.JSON(), nullable=False),
    sa.Column('published', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('error', sa.String(length=512), nullable=True),
    sa.Column('created_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('checked_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('outbox_key')
    )
    op.create_index('ix_campaign_moment_campaign', 'campaign_moment', ['campaign', 'channel'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_campaign_moment_campaign', table_name='campaign_moment')
    op.drop_table('campaign_moment')
