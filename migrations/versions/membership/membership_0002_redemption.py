"""membership: reserved points on the account (pending redemptions), membership_redemption
(reserve → confirm / cancel through the bank's fulfilment system), and an index on when earned
points fall due (the nightly lapse reads only those)

Revision ID: membership_0002
Revises: campaigns_0003
Create Date: 2026-12-07 07:40:00

Written by hand (the lead regenerates migrations from scrm.adapters.db.models*).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import scrm.adapters.db.types

revision = 'membership_0002'
down_revision = "campaigns_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: SQLite adds a check constraint only by rebuilding the table.
    with op.batch_alter_table('membership_account') as batch:
        batch.add_column(sa.Column('reserved', sa.Integer(), server_default='0', nullable=False))
        batch.create_check_constraint('ck_membership_account_reserved_not_negative', 'reserved >= 0')
    op.create_table('membership_redemption',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('external_userid', sa.String(length=128), nullable=False),
    sa.Column('crm_id', sa.String(length=128), nullable=False),
    sa.Column('item', sa.String(length=128), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('reserved_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deadline', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('settled_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('points > 0', name='ck_membership_redemption_points'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_membership_redemption_member', 'membership_redemption', ['external_userid'], unique=False)
    op.create_index('ix_membership_entry_due', 'membership_entry', ['expires_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_membership_entry_due', table_name='membership_entry')
    op.drop_index('ix_membership_redemption_member', table_name='membership_redemption')
    op.drop_table('membership_redemption')
    with op.batch_alter_table('membership_account') as batch:
        batch.drop_constraint('ck_membership_account_reserved_not_negative', type_='check')
        batch.drop_column('reserved')
