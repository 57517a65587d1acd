"""sop planner: follow_tag by customer

Revision ID: sop_0002_plan_idx
Revises: 0003
Create Date: 2026-11-23 05:30:00

The SOP planner (and CRM tag sync) read a customer's tags by external_userid; the primary key
(userid, external_userid, tag_id) cannot serve that, so each batch scanned the whole table —
quadratic in the number of customers. (external_userid, tag_id) also covers "customers with tag
T" scans for the planner's narrowing.
"""

from __future__ import annotations

from alembic import op

revision = 'sop_0002_plan_idx'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('follow_tag', schema=None) as batch_op:
        batch_op.create_index('ix_follow_tag_customer', ['external_userid', 'tag_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('follow_tag', schema=None) as batch_op:
        batch_op.drop_index('ix_follow_tag_customer')
