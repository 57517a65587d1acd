"""console: the tasks and home pages read the task cards from indexes alone

Revision ID: console_0009
Revises: console_0008
Create Date: 2026-12-07 14:55:00

Found by ``bench.pageprofile`` on the 1,000,000-customer data set (199,740 task cards;
EXPLAIN ANALYZE in bench/README.md, section "What changed (branch console)"):

* ``sop_task (day, userid, status)``: the tasks page counts a period's cards per manager and
  status; without it a parallel scan of every card (~80 ms a view, three processes).
* ``sop_task (userid, day) WHERE status IN ('open', 'snoozed')``: the home page counts the open
  cards and the overdue ones among them (42,000 of the 200,000); 38 ms a count without it, ~10 ms
  for both with it.

Written by hand (the lead regenerates migrations from scrm.adapters.db.models*).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'console_0009'
down_revision = 'console_0008'
branch_labels = None
depends_on = None

OPEN_SQL = "status IN ('open', 'snoozed')"


def upgrade() -> None:
    op.create_index('ix_sop_task_day_user_status', 'sop_task', ['day', 'userid', 'status'], unique=False)
    op.create_index('ix_sop_task_open_user_day', 'sop_task', ['userid', 'day'], unique=False,
                    sqlite_where=sa.text(OPEN_SQL), postgresql_where=sa.text(OPEN_SQL))


def downgrade() -> None:
    op.drop_index('ix_sop_task_open_user_day', table_name='sop_task')
    op.drop_index('ix_sop_task_day_user_status', table_name='sop_task')
