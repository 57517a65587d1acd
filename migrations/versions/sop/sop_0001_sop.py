"""sop engine: sop_send, sop_task, sop_mass_send

Revision ID: sop_0001
Revises: 0001
Create Date: 2026-11-23 12:00:00

Written by hand (the lead regenerates migrations from scrm.kernel.models).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import scrm.adapters.db.types

revision = 'sop_0001'
down_revision = '0001'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_TS = scrm.adapters.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('sop_send',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=512), nullable=False),
    sa.Column('target', sa.String(length=128), nullable=False),
    sa.Column('target_type', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=128), nullable=False),
    sa.Column('step', sa.String(length=256), nullable=False),
    sa.Column('sender', sa.String(length=64), nullable=False),
    sa.Column('material', sa.String(length=128), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('created_at', _TS, nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    op.create_index('ix_sop_send_target_day', 'sop_send', ['target', 'day'], unique=False)
    op.create_table('sop_task',
    sa.Column('task_id', sa.String(length=128), nullable=False),
    sa.Column('key', sa.String(length=512), nullable=False),
    sa.Column('userid', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=128), nullable=False),
    sa.Column('source', sa.String(length=128), nullable=False),
    sa.Column('title', sa.String(length=256), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('snoozes', sa.Integer(), nullable=False),
    sa.Column('escalated_to', sa.String(length=64), nullable=True),
    sa.Column('created_at', _TS, nullable=False),
    sa.Column('handled_at', _TS, nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('task_id'),
    sa.UniqueConstraint('key')
    )
    op.create_index('ix_sop_task_userid', 'sop_task', ['userid'], unique=False)
    op.create_index('ix_sop_task_user_day', 'sop_task', ['userid', 'day'], unique=False)
    op.create_table('sop_mass_send',
    sa.Column('msgid', sa.String(length=128), nullable=False),
    sa.Column('outbox_key', sa.String(length=512), nullable=False),
    sa.Column('created_at', _TS, nullable=False),
    sa.Column('confirmed', sa.Boolean(), nullable=False),
    sa.Column('reminds', sa.JSON(), nullable=False),
    sa.Column('checked_at', _TS, nullable=True),
    sa.PrimaryKeyConstraint('msgid')
    )


def downgrade() -> None:
    op.drop_table('sop_mass_send')
    op.drop_index('ix_sop_task_user_day', table_name='sop_task')
    op.drop_index('ix_sop_task_userid', table_name='sop_task')
    op.drop_table('sop_task')
    op.drop_index('ix_sop_send_target_day', table_name='sop_send')
    op.drop_table('sop_send')
