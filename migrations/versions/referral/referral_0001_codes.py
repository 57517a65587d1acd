"""referral: referral_code (each referrer's code and QR code), referral (a friend attributed to
one referrer, and what became of it), referral_flag (what ops should look at)

Revision ID: referral_0001
Revises: feedback_0001
Create Date: 2026-12-07 08:00:00

Written by hand (the lead regenerates migrations from scrm.adapters.db.models*).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import scrm.adapters.db.types

revision = 'referral_0001'
down_revision = "feedback_0001"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('referral_code',
    sa.Column('external_userid', sa.String(length=128), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=30), nullable=False),
    sa.Column('config_id', sa.String(length=128), nullable=True),
    sa.Column('qr_code', sa.String(length=512), nullable=False),
    sa.Column('managers', sa.String(length=512), nullable=False),
    sa.Column('created_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('external_userid'),
    sa.UniqueConstraint('code'),
    sa.UniqueConstraint('state')
    )
    op.create_table('referral',
    sa.Column('friend', sa.String(length=128), nullable=False),
    sa.Column('referrer', sa.String(length=128), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('userid', sa.String(length=64), nullable=False),
    sa.Column('arrived_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('conversion', sa.String(length=128), nullable=False),
    sa.Column('converted_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reward_month', sa.Date(), nullable=True),
    sa.Column('referrer_rewarded', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('friend')
    )
    op.create_index('ix_referral_referrer', 'referral', ['referrer', 'status'], unique=False)
    op.create_table('referral_flag',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('friend', sa.String(length=128), nullable=False),
    sa.Column('referrer', sa.String(length=128), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('detail', sa.String(length=256), nullable=False),
    sa.Column('at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('friend', 'code', 'reason', name='uq_referral_flag')
    )


def downgrade() -> None:
    op.drop_table('referral_flag')
    op.drop_index('ix_referral_referrer', table_name='referral')
    op.drop_table('referral')
    op.drop_table('referral_code')
