"""membership: an index on a member's entries of one kind by time (the growth in an upgrade's or a
review's window is read as a range, not from the member's whole history)

Revision ID: membership_0003
Revises: console_0007
Create Date: 2026-12-07 11:10:00

Written by hand (the lead regenerates migrations from scrm.adapters.db.models*).
"""

from __future__ import annotations

from alembic import op

revision = 'membership_0003'
down_revision = "console_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_membership_entry_member_at', 'membership_entry', ['external_userid', 'kind', 'at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_membership_entry_member_at', table_name='membership_entry')
