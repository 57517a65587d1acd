"""backfill: adopting a corp that already has customers (resumable backfill progress)

Revision ID: backfill_0001
Revises: crm_0002
Create Date: 2026-12-07 00:50:00

Written by hand (the lead regenerates migrations from scrm.adapters.db.models*).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import scrm.adapters.db.types

revision = 'backfill_0001'
down_revision = 'crm_0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('backfill_run',
    sa.Column('corp_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('started_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lease_owner', sa.String(length=128), nullable=True),
    sa.Column('lease_until', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('corp_id')
    )
    op.create_table('backfill_stage',
    sa.Column('corp_id', sa.String(length=64), nullable=False),
    sa.Column('stage', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('position', sa.JSON(), nullable=False),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('items', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.Integer(), nullable=False),
    sa.Column('updated_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('note', sa.String(length=512), nullable=False),
    sa.PrimaryKeyConstraint('corp_id', 'stage')
    )


def downgrade() -> None:
    op.drop_table('backfill_stage')
    op.drop_table('backfill_run')
