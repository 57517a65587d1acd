"""lifecycle: channel contact ways and group QR pools

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 12:00:00

Written by hand (the lead regenerates migrations from scrm.kernel.models).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import scrm.adapters.db.types

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('channel_way',
    sa.Column('key', sa.String(length=30), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('config_id', sa.String(length=128), nullable=True),
    sa.Column('qr_code', sa.String(length=512), nullable=False),
    sa.Column('spec_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('synced_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('group_pool',
    sa.Column('group_type', sa.String(length=64), nullable=False),
    sa.Column('config_id', sa.String(length=128), nullable=True),
    sa.Column('qr_code', sa.String(length=512), nullable=False),
    sa.Column('state', sa.String(length=30), nullable=False),
    sa.Column('chat_ids', sa.JSON(), nullable=False),
    sa.Column('needs_room', sa.Boolean(), nullable=False),
    sa.Column('welcome_template_id', sa.String(length=128), nullable=True),
    sa.Column('welcome_hash', sa.String(length=64), nullable=False),
    sa.Column('synced_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('group_type')
    )


def downgrade() -> None:
    op.drop_table('group_pool')
    op.drop_table('channel_way')
