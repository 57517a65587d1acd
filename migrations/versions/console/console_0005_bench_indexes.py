"""console: indexes the 1,000,000-customer benches asked for

Revision ID: console_0005
Revises: lifecycle_0001
Create Date: 2026-12-07 04:40:00

Found by ``bench.sidebar`` and ``bench.console`` on the 1,000,000-customer data set
(``bench._million``; EXPLAIN ANALYZE in bench/README.md):

* ``group_member`` by ``member_id``: the sidebar's 1:1 panel looks up the customer's groups
  (``handlers/sidebar/upcoming.py``) by member, but the primary key leads with ``chat_id``: a
  scan of every membership, 17.6 ms a panel at 310,000 rows; 0.1 ms with the index.
* ``follow`` by ``created_at`` and by ``status_at``: the cockpit computes today live on every
  view (and the nightly roll-up each day) from relations added or ended in a time range, and
  retention from those added N days before: six scans of the whole table (~0.1 s each at
  1,100,000 relations) per cockpit view.

Written by hand (the lead regenerates migrations from scrm.adapters.db.models*).
"""

from __future__ import annotations

from alembic import op

revision = 'console_0005'
down_revision = 'lifecycle_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('group_member', schema=None) as batch_op:
        batch_op.create_index('ix_group_member_member', ['member_id'], unique=False)
    with op.batch_alter_table('follow', schema=None) as batch_op:
        batch_op.create_index('ix_follow_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_follow_status_at', ['status_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('follow', schema=None) as batch_op:
        batch_op.drop_index('ix_follow_status_at')
        batch_op.drop_index('ix_follow_created_at')
    with op.batch_alter_table('group_member', schema=None) as batch_op:
        batch_op.drop_index('ix_group_member_member')
