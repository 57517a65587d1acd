"""crm: tag sync state and write-back state

Revision ID: crm_0001
Revises: 0001
Create Date: 2026-11-23 12:00:00

Written by hand (the lead regenerates migrations from scrm.adapters.db.models*).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import scrm.adapters.db.types

revision = 'crm_0001'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('crm_sync_state',
    sa.Column('userid', sa.String(length=64), nullable=False),
    sa.Column('external_userid', sa.String(length=128), nullable=False),
    sa.Column('desired_hash', sa.String(length=64), nullable=False),
    sa.Column('generation', sa.String(length=64), nullable=False),
    sa.Column('synced_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('userid', 'external_userid')
    )
    op.create_table('crm_writeback_state',
    sa.Column('userid', sa.String(length=64), nullable=False),
    sa.Column('external_userid', sa.String(length=128), nullable=False),
    sa.Column('tag_ids', sa.JSON(), nullable=False),
    sa.Column('reported_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('userid', 'external_userid')
    )


def downgrade() -> None:
    op.drop_table('crm_writeback_state')
    op.drop_table('crm_sync_state')
