"""console: indexes behind the customers pages (search, one customer's page)

Revision ID: console_0004
Revises: console_0003
Create Date: 2026-12-10 12:00:00

Search by name is a case-insensitive *prefix* on an expression index of ``(lower(name),
external_userid)``, walked in that order for keyset pages; on PostgreSQL the key carries
``COLLATE "C"`` (byte order), so a prefix is one index range whatever collation the database
was created with (under zh_CN or en_US a prefix is not a contiguous range). pg_trgm was not
chosen: it needs an extension the bank's DBA must allow, and Chinese names are two or three
characters, too short for trigrams to narrow anything; a prefix (the surname) is how people
look a customer up. Search by tag starts from the tag (``follow_tag (tag_id, external_userid)``);
a customer's page reads their cards (``sop_task (target, day)``) and opens (``radar_click
(external_userid, at)``) by index. Written by hand (the lead regenerates migrations from
scrm.adapters.db.models*; keep the PostgreSQL collation when doing so).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'console_0004'
down_revision = 'console_0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute('CREATE INDEX ix_customer_name_key ON customer ((lower(name) COLLATE "C"), external_userid)')
    else:
        op.create_index('ix_customer_name_key', 'customer', [sa.text('lower(name)'), 'external_userid'], unique=False)
    with op.batch_alter_table('follow_tag', schema=None) as batch_op:
        batch_op.create_index('ix_follow_tag_tag', ['tag_id', 'external_userid'], unique=False)
    with op.batch_alter_table('sop_task', schema=None) as batch_op:
        batch_op.create_index('ix_sop_task_target_day', ['target', 'day'], unique=False)
    with op.batch_alter_table('radar_click', schema=None) as batch_op:
        batch_op.create_index('ix_radar_click_customer_at', ['external_userid', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('radar_click', schema=None) as batch_op:
        batch_op.drop_index('ix_radar_click_customer_at')
    with op.batch_alter_table('sop_task', schema=None) as batch_op:
        batch_op.drop_index('ix_sop_task_target_day')
    with op.batch_alter_table('follow_tag', schema=None) as batch_op:
        batch_op.drop_index('ix_follow_tag_tag')
    op.drop_index('ix_customer_name_key', table_name='customer')
