"""membership: membership_entry (append-only ledger), membership_account (balances and level),
membership_level_change (every move of a level)

Revision ID: membership_0001
Revises: campaigns_0001
Create Date: 2026-12-07 05:30:00

Written by hand (the lead regenerates migrations from scrm.adapters.db.models*).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import scrm.adapters.db.types

revision = 'membership_0001'
down_revision = 'campaigns_0001'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('membership_entry',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('external_userid', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=8), nullable=False),
    sa.Column('behaviour', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=256), nullable=False),
    sa.Column('at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('expires_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'external_userid', 'kind', name='uq_membership_entry_source')
    )
    op.create_index('ix_membership_entry_caps', 'membership_entry', ['external_userid', 'behaviour', 'day'],
                    unique=False)
    op.create_table('membership_account',
    sa.Column('external_userid', sa.String(length=128), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('growth', sa.Integer(), nullable=False),
    sa.Column('level', sa.String(length=32), nullable=False),
    sa.Column('level_since', sa.Date(), nullable=False),
    sa.Column('reviewed_on', sa.Date(), nullable=True),
    sa.Column('lapsed_until', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('points >= 0 AND growth >= 0', name='ck_membership_account_not_negative'),
    sa.PrimaryKeyConstraint('external_userid')
    )
    op.create_index('ix_membership_account_level', 'membership_account', ['level'], unique=False)
    op.create_table('membership_level_change',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('external_userid', sa.String(length=128), nullable=False),
    sa.Column('previous', sa.String(length=32), nullable=False),
    sa.Column('level', sa.String(length=32), nullable=False),
    sa.Column('direction', sa.String(length=4), nullable=False),
    sa.Column('cause', sa.String(length=256), nullable=False),
    sa.Column('at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('external_userid', 'cause', name='uq_membership_level_change_cause')
    )


def downgrade() -> None:
    op.drop_table('membership_level_change')
    op.drop_index('ix_membership_account_level', table_name='membership_account')
    op.drop_table('membership_account')
    op.drop_index('ix_membership_entry_caps', table_name='membership_entry')
    op.drop_table('membership_entry')
