"""radar: link sends and alert aggregation state

Revision ID: radar_0001
Revises: 0001
Create Date: 2026-11-23 12:00:00

Written by hand (the lead regenerates migrations from scrm.kernel.models).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import scrm.adapters.db.types

revision = 'radar_0001'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('radar_send',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('token_id', sa.String(length=64), nullable=False),
    sa.Column('material_id', sa.String(length=128), nullable=False),
    sa.Column('sender', sa.String(length=64), nullable=False),
    sa.Column('external_userid', sa.String(length=128), nullable=True),
    sa.Column('occurrence', sa.String(length=512), nullable=True),
    sa.Column('at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_id')
    )
    with op.batch_alter_table('radar_send', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_radar_send_material_id'), ['material_id'], unique=False)

    op.create_table('radar_alert',
    sa.Column('sender', sa.String(length=64), nullable=False),
    sa.Column('external_userid', sa.String(length=128), nullable=False),
    sa.Column('material_id', sa.String(length=128), nullable=False),
    sa.Column('last_alert_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('suppressed', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('sender', 'external_userid', 'material_id')
    )


def downgrade() -> None:
    op.drop_table('radar_alert')
    with op.batch_alter_table('radar_send', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_radar_send_material_id'))
    op.drop_table('radar_send')
