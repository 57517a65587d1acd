"""merge feature areas

Revision ID: 0003
Revises: 0002, crm_0001, radar_0001, sop_0001
Create Date: 2026-11-23 04:32:25.448712
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import scrm.adapters.db.types


revision = '0003'
down_revision = ('0002', 'crm_0001', 'radar_0001', 'sop_0001')
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
