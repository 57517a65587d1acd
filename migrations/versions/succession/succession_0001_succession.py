"""succession: handovers of customers and groups (离职继承, 在职继承)

Revision ID: succession_0001
Revises: backfill_0001
Create Date: 2026-12-07 00:50:00

Written by hand (the lead regenerates migrations from scrm.adapters.db.models*).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import scrm.adapters.db.types

revision = 'succession_0001'
down_revision = 'backfill_0001'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('succession_batch',
    sa.Column('id', sa.String(length=160), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('handover_userid', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('message', sa.String(length=256), nullable=False),
    sa.Column('created_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('notified', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_succession_batch_handover_userid', 'succession_batch', ['handover_userid'], unique=False)
    op.create_table('succession_item',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('batch_id', sa.String(length=160), nullable=False),
    sa.Column('target_type', sa.String(length=16), nullable=False),
    sa.Column('target', sa.String(length=128), nullable=False),
    sa.Column('handover_userid', sa.String(length=64), nullable=False),
    sa.Column('takeover_userid', sa.String(length=64), nullable=False),
    sa.Column('rule', sa.String(length=128), nullable=False),
    sa.Column('call_key', sa.String(length=256), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('errcode', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=256), nullable=False),
    sa.Column('created_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('batch_id', 'target_type', 'target', name='uq_succession_item')
    )
    op.create_index('ix_succession_item_target', 'succession_item', ['target', 'status'], unique=False)
    op.create_index('ix_succession_item_status', 'succession_item', ['status', 'batch_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_succession_item_status', table_name='succession_item')
    op.drop_index('ix_succession_item_target', table_name='succession_item')
    op.drop_table('succession_item')
    op.drop_index('ix_succession_batch_handover_userid', table_name='succession_batch')
    op.drop_table('succession_batch')
