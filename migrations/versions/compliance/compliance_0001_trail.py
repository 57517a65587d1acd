"""compliance: the hash-chained message trail

Revision ID: compliance_0001
Revises: console_0004
Create Date: 2026-12-07 04:30:00

Written by hand (the lead regenerates migrations from scrm.adapters.db.models*).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import scrm.adapters.db.types

revision = 'compliance_0001'
down_revision = 'console_0004'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table('trail_record',
    sa.Column('seq', _ID, autoincrement=False, nullable=False),
    sa.Column('at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('api', sa.String(length=96), nullable=False),
    sa.Column('outbox_key', sa.String(length=512), nullable=False),
    sa.Column('msgid', sa.String(length=128), nullable=False),
    sa.Column('sender', sa.String(length=64), nullable=False),
    sa.Column('audience', sa.JSON(), nullable=False),
    sa.Column('audience_type', sa.String(length=16), nullable=False),
    sa.Column('material', sa.String(length=128), nullable=False),
    sa.Column('material_hash', sa.String(length=64), nullable=False),
    sa.Column('text_hash', sa.String(length=64), nullable=False),
    sa.Column('decisions', sa.JSON(), nullable=False),
    sa.Column('retain_until', sa.Date(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    op.create_index('ix_trail_record_outbox_key', 'trail_record', ['outbox_key'], unique=False)
    op.create_index('ix_trail_record_retain_until', 'trail_record', ['retain_until'], unique=False)
    head = op.create_table('trail_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', _ID, nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('base_seq', _ID, nullable=False),
    sa.Column('base_hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    # The chain's one head row exists from the start: appending only ever locks and moves it.
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS, "base_seq": 0, "base_hash": GENESIS}])


def downgrade() -> None:
    op.drop_table('trail_head')
    op.drop_index('ix_trail_record_retain_until', table_name='trail_record')
    op.drop_index('ix_trail_record_outbox_key', table_name='trail_record')
    op.drop_table('trail_record')
