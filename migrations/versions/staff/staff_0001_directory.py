"""staff: the directory's departments and member profiles

Revision ID: staff_0001
Revises: 0005
Create Date: 2026-12-06 23:00:00

Its own branch (one per feature): the member table itself is contacts' (kernel 0001).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import scrm.adapters.db.types

revision = 'staff_0001'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('staff_department',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.Column('leaders', sa.JSON(), nullable=False),
    sa.Column('updated_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('staff_profile',
    sa.Column('userid', sa.String(length=64), nullable=False),
    sa.Column('main_department', sa.Integer(), nullable=True),
    sa.Column('departments', sa.JSON(), nullable=False),
    sa.Column('in_wecom', sa.Boolean(), nullable=False),
    sa.Column('team_lead_override', sa.String(length=64), nullable=True),
    sa.Column('updated_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('userid')
    )


def downgrade() -> None:
    op.drop_table('staff_profile')
    op.drop_table('staff_department')
