"""console: the cockpit's cache of stored periods, and a metric-leading index on the roll-up

Revision ID: console_0006
Revises: campaigns_0002
Create Date: 2026-12-07 08:00:00

Found by ``bench.console`` / ``bench.pageprofile`` on the 1,000,000-customer data set:

* ``console_period_cache``: the stored days' part of a cockpit period (sums per manager, distinct
  customers per manager, team and scope), kept so a view does not aggregate ~350,000 roll-up rows
  again (``handlers/console/periodcache.py``).
* ``ix_console_rollup_metric_key`` (metric, key, day, userid): the cockpit looks today's live
  customers up in the stored days; the primary key leads with ``day``, so each lookup of 500
  keys scanned the period's rows (0.17 s); with the index, index-only probes.

Written by hand (the lead regenerates migrations from scrm.adapters.db.models*).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'console_0006'
down_revision = "campaigns_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('console_period_cache',
                    sa.Column('key', sa.String(length=64), nullable=False),
                    sa.Column('first', sa.Date(), nullable=False),
                    sa.Column('last', sa.Date(), nullable=False),
                    sa.Column('fingerprint', sa.String(length=64), nullable=False),
                    sa.Column('data', sa.JSON(), nullable=False),
                    sa.PrimaryKeyConstraint('key'))
    with op.batch_alter_table('console_rollup', schema=None) as batch_op:
        batch_op.create_index('ix_console_rollup_metric_key', ['metric', 'key', 'day', 'userid'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('console_rollup', schema=None) as batch_op:
        batch_op.drop_index('ix_console_rollup_metric_key')
    op.drop_table('console_period_cache')
