"""console: indexes behind the SOP effect page

Revision ID: console_0003
Revises: console_0002
Create Date: 2026-12-10 10:00:00

The effect page reads one bounded period of SOP step outcomes (``occurrence`` by ``at``: the
cockpit's roll-up of a day reads the same range, which was a full scan) and the radar opens of
those steps' sends (``radar_click`` by ``occurrence``). Written by hand (the lead regenerates
migrations from scrm.adapters.db.models*).
"""

from __future__ import annotations

from alembic import op

revision = 'console_0003'
down_revision = 'console_0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('occurrence', schema=None) as batch_op:
        batch_op.create_index('ix_occurrence_at', ['at'], unique=False)
    with op.batch_alter_table('radar_click', schema=None) as batch_op:
        batch_op.create_index('ix_radar_click_occurrence', ['occurrence'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('radar_click', schema=None) as batch_op:
        batch_op.drop_index('ix_radar_click_occurrence')
    with op.batch_alter_table('occurrence', schema=None) as batch_op:
        batch_op.drop_index('ix_occurrence_at')
