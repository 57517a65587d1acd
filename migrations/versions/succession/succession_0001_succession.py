"""succession: handovers of customers and groups (离职继承, 在职继承)

Revision ID: succession_0001
Revises: backfill_0001
Create Date: 2026-12-07 00:50:00

Written by hand (the lead regenerates migrations from scrm.adapters.db.models*).
"""

from __future__ import annotations

revision = 'succession_0001'
down_revision = 'backfill_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
