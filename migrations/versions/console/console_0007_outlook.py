"""console: the SOP calendar's stored outlook (the planner's next 30 days, computed by a job)

Revision ID: console_0007
Revises: console_0007e
Create Date: 2026-12-07 11:00:00

The calendar page planned the whole bank for 30 days on every view past its cache (10.5 s p95
on a million customers, on the service's event loop). The ``console.outlook`` job now plans
once a day and after each playbook reload and stores the counts here
(``handlers/console/outlook.py``); the page reads those of the viewer's managers.

Written by hand (the lead regenerates migrations from scrm.adapters.db.models*).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import scrm.adapters.db.types

revision = 'console_0007'
down_revision = "console_0007e"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('console_outlook_run',
                    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
                              nullable=False),
                    sa.Column('start', sa.Date(), nullable=False),
                    sa.Column('days', sa.Integer(), nullable=False),
                    sa.Column('version', sa.String(length=64), nullable=False),
                    sa.Column('computed_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
                    sa.Column('reasons', sa.JSON(), nullable=False),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('start', 'days', 'version', name='uq_console_outlook_run'))
    op.create_table('console_outlook',
                    sa.Column('run_id', sa.BigInteger(), nullable=False),
                    sa.Column('owner', sa.String(length=64), nullable=False),
                    sa.Column('day', sa.Date(), nullable=False),
                    sa.Column('at', sa.String(length=5), nullable=False),
                    sa.Column('source', sa.String(length=128), nullable=False),
                    sa.Column('step', sa.String(length=128), nullable=False),
                    sa.Column('material', sa.String(length=128), nullable=False),
                    sa.Column('outcome', sa.String(length=64), nullable=False),
                    sa.Column('count', sa.Integer(), nullable=False),
                    sa.PrimaryKeyConstraint('run_id', 'owner', 'day', 'at', 'source', 'step', 'material', 'outcome'))


def downgrade() -> None:
    op.drop_table('console_outlook')
    op.drop_table('console_outlook_run')
