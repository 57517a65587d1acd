"""lifecycle: customer_segment — tier, segments, grade, RFM and stage per customer (三分, 生命周期)

Revision ID: lifecycle_0001
Revises: compliance_0003
Create Date: 2026-12-07 05:00:00

Written by hand (the lead regenerates migrations from scrm.adapters.db.models*).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import scrm.adapters.db.types

revision = 'lifecycle_0001'
down_revision = 'compliance_0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('customer_segment',
    sa.Column('external_userid', sa.String(length=128), nullable=False),
    sa.Column('crm_id', sa.String(length=128), nullable=True),
    sa.Column('tier', sa.String(length=32), nullable=True),
    sa.Column('segments', sa.JSON(), nullable=False),
    sa.Column('grade', sa.String(length=16), nullable=True),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('rfm', sa.String(length=8), nullable=True),
    sa.Column('stage', sa.String(length=32), nullable=True),
    sa.Column('stage_since', sa.Date(), nullable=True),
    sa.Column('aum', sa.Float(), nullable=True),
    sa.Column('aum_base', sa.Float(), nullable=True),
    sa.Column('aum_mid', sa.Float(), nullable=True),
    sa.Column('aum_mid_at', sa.Date(), nullable=True),
    sa.Column('computed_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('external_userid')
    )
    op.create_index('ix_customer_segment_stage', 'customer_segment', ['stage'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_customer_segment_stage', table_name='customer_segment')
    op.drop_table('customer_segment')
