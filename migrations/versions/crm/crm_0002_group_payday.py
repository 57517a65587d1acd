"""crm: a customer group's employer and payday from the CRM (payroll groups)

Revision ID: crm_0002
Revises: staff_0001
Create Date: 2026-12-06 23:30:00

Written by hand (the lead regenerates migrations from scrm.adapters.db.models*).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import scrm.adapters.db.types

revision = 'crm_0002'
down_revision = 'staff_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('crm_group',
    sa.Column('chat_id', sa.String(length=128), nullable=False),
    sa.Column('employer', sa.String(length=128), nullable=False),
    sa.Column('payday', sa.Integer(), nullable=True),
    sa.Column('updated_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('chat_id')
    )


def downgrade() -> None:
    op.drop_table('crm_group')
