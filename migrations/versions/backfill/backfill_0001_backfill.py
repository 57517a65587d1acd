"""backfill: adopting a corp that already has customers (resumable backfill progress)

Revision ID: backfill_0001
Revises: crm_0002
Create Date: 2026-12-07 00:50:00

Written by hand (the lead regenerates migrations from scrm.adapters.db.models*).
"""

from __future__ import annotations

revision = 'backfill_0001'
down_revision = 'crm_0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
