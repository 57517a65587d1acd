"""console: a day's group joins and quits read from indexes

Revision ID: console_0010
Revises: console_0009
Create Date: 2026-12-07 21:30:00

The cockpit's roll-up of a day (and today's live part, on every first view of a live window)
counts the customers who joined or left groups that day: without an index on the moments,
PostgreSQL scanned every ``group_member`` row twice (310,000 rows, ~40 ms each on the
1,000,000-customer data set; a bank's table grows with every group it ever had).

Written by hand (the lead regenerates migrations from scrm.adapters.db.models*).
"""

from __future__ import annotations

from alembic import op

revision = 'console_0010'
down_revision = 'console_0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_group_member_joined_at', 'group_member', ['joined_at'], unique=False)
    op.create_index('ix_group_member_left_at', 'group_member', ['left_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_group_member_left_at', table_name='group_member')
    op.drop_index('ix_group_member_joined_at', table_name='group_member')
