"""console: the 客群与会员 page's nightly snapshot (behaviour matrix and membership figures per
manager)

Revision ID: console_0008
Revises: membership_0003
Create Date: 2026-12-07 15:00:00

Counting a million customers' segments, stages, levels and points per page view is seconds of
database work; ``console_seg_run`` and its four tables keep what the ``console.segments`` job
counted each night per manager (``handlers/console/segstore.py``).

Written by hand (the lead regenerates migrations from scrm.adapters.db.models*).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import scrm.adapters.db.types

revision = 'console_0008'
down_revision = 'membership_0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('console_seg_run',
                    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
                              nullable=False),
                    sa.Column('day', sa.Date(), nullable=False),
                    sa.Column('since', sa.Date(), nullable=False),
                    sa.Column('computed_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('day', name='uq_console_seg_run_day'))
    op.create_table('console_seg_cell',
                    sa.Column('run_id', sa.BigInteger(), nullable=False),
                    sa.Column('owner', sa.String(length=64), nullable=False),
                    sa.Column('segment', sa.String(length=64), nullable=False),
                    sa.Column('stage', sa.String(length=32), nullable=False),
                    sa.Column('count', sa.Integer(), nullable=False),
                    sa.PrimaryKeyConstraint('run_id', 'owner', 'segment', 'stage'))
    op.create_table('console_seg_level',
                    sa.Column('run_id', sa.BigInteger(), nullable=False),
                    sa.Column('owner', sa.String(length=64), nullable=False),
                    sa.Column('level', sa.String(length=32), nullable=False),
                    sa.Column('members', sa.Integer(), nullable=False),
                    sa.Column('points', sa.BigInteger(), nullable=False),
                    sa.Column('reserved', sa.BigInteger(), nullable=False),
                    sa.PrimaryKeyConstraint('run_id', 'owner', 'level'))
    op.create_table('console_seg_flow',
                    sa.Column('run_id', sa.BigInteger(), nullable=False),
                    sa.Column('owner', sa.String(length=64), nullable=False),
                    sa.Column('month', sa.String(length=7), nullable=False),
                    sa.Column('direction', sa.String(length=4), nullable=False),
                    sa.Column('previous', sa.String(length=32), nullable=False),
                    sa.Column('level', sa.String(length=32), nullable=False),
                    sa.Column('count', sa.Integer(), nullable=False),
                    sa.PrimaryKeyConstraint('run_id', 'owner', 'month', 'direction', 'previous', 'level'))
    op.create_table('console_seg_top',
                    sa.Column('run_id', sa.BigInteger(), nullable=False),
                    sa.Column('owner', sa.String(length=64), nullable=False),
                    sa.Column('external_userid', sa.String(length=128), nullable=False),
                    sa.Column('growth', sa.Integer(), nullable=False),
                    sa.Column('points', sa.Integer(), nullable=False),
                    sa.Column('level', sa.String(length=32), nullable=False),
                    sa.PrimaryKeyConstraint('run_id', 'owner', 'external_userid'))


def downgrade() -> None:
    for table in ('console_seg_top', 'console_seg_flow', 'console_seg_level', 'console_seg_cell', 'console_seg_run'):
        op.drop_table(table)
