"""console: the SOP effect page's stored rows (one per target, step and planned day)

Revision ID: console_0007e
Revises: membership_0002
Create Date: 2026-12-07 11:00:00

The effect page on 1,000,000 customers read ~143,000 occurrence rows and ~1,400 ``IN (500
keys)`` statements per 30-day view; ``console_effect_row`` keeps what they come to per target,
step and day, built nightly (``handlers/console/effectstore.py``), and ``console_effect_day``
which days are stored, when, and the ids read up to then (what came later is read live);
``ix_binding_bound_at`` finds the bindings made since a build.

Written by hand (the lead regenerates migrations from scrm.adapters.db.models*).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import scrm.adapters.db.types

revision = 'console_0007e'
down_revision = 'membership_0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('console_effect_row',
                    sa.Column('day', sa.Date(), nullable=False),
                    sa.Column('source', sa.String(length=128), nullable=False),
                    sa.Column('step', sa.String(length=256), nullable=False),
                    sa.Column('target', sa.String(length=128), nullable=False),
                    sa.Column('manager', sa.String(length=64), nullable=False),
                    sa.Column('at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
                    sa.Column('sent', sa.Boolean(), nullable=False),
                    sa.Column('skip', sa.String(length=32), nullable=True),
                    sa.Column('delivered', sa.Boolean(), nullable=False),
                    sa.Column('opened', sa.Boolean(), nullable=False),
                    sa.Column('converted', sa.Boolean(), nullable=False),
                    sa.PrimaryKeyConstraint('day', 'source', 'step', 'target'))
    with op.batch_alter_table('console_effect_row', schema=None) as batch_op:
        batch_op.create_index('ix_console_effect_row_target', ['target', 'day'], unique=False)
        batch_op.create_index('ix_console_effect_row_manager_day', ['manager', 'day'], unique=False)
    op.create_table('console_effect_day',
                    sa.Column('day', sa.Date(), nullable=False),
                    sa.Column('built_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
                    sa.Column('goals', sa.String(length=64), nullable=False),
                    sa.Column('occurrence_id', sa.BigInteger(), nullable=False),
                    sa.Column('click_id', sa.BigInteger(), nullable=False),
                    sa.Column('crm_event_id', sa.BigInteger(), nullable=False),
                    sa.PrimaryKeyConstraint('day'))
    with op.batch_alter_table('binding', schema=None) as batch_op:
        batch_op.create_index('ix_binding_bound_at', ['bound_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('binding', schema=None) as batch_op:
        batch_op.drop_index('ix_binding_bound_at')
    op.drop_table('console_effect_day')
    with op.batch_alter_table('console_effect_row', schema=None) as batch_op:
        batch_op.drop_index('ix_console_effect_row_manager_day')
        batch_op.drop_index('ix_console_effect_row_target')
    op.drop_table('console_effect_row')
