"""console: daily roll-ups behind the cockpit (驾驶舱)

Revision ID: console_0002
Revises: console_0001
Create Date: 2026-12-08 10:00:00

Written by hand (the lead regenerates migrations from scrm.adapters.db.models*).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import scrm.adapters.db.types

revision = 'console_0002'
down_revision = 'console_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('console_rollup',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('userid', sa.String(length=64), nullable=False),
    sa.Column('metric', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'userid', 'metric', 'key')
    )
    op.create_index('ix_console_rollup_user_day', 'console_rollup', ['userid', 'day'], unique=False)
    op.create_table('console_rollup_day',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('rolled_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('unsettled', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day')
    )


def downgrade() -> None:
    op.drop_table('console_rollup_day')
    op.drop_index('ix_console_rollup_user_day', table_name='console_rollup')
    op.drop_table('console_rollup')
