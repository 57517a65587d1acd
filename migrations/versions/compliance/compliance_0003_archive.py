"""compliance: conversation review (会话存档) — archived messages, the intake cursor, review cases

Revision ID: compliance_0003
Revises: compliance_0002
Create Date: 2026-12-07 04:40:00

Written by hand (the lead regenerates migrations from scrm.adapters.db.models*).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import scrm.adapters.db.types

revision = 'compliance_0003'
down_revision = 'compliance_0002'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_AT = scrm.adapters.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('archive_message',
    sa.Column('seq', _ID, autoincrement=False, nullable=False),
    sa.Column('msgid', sa.String(length=128), nullable=False),
    sa.Column('conversation', sa.String(length=160), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('sender', sa.String(length=64), nullable=False),
    sa.Column('tolist', sa.JSON(), nullable=False),
    sa.Column('roomid', sa.String(length=64), nullable=False),
    sa.Column('msgtime', _AT, nullable=False),
    sa.Column('msgtype', sa.String(length=32), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('key_version', sa.Integer(), nullable=False),
    sa.Column('stored_at', _AT, nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('msgid')
    )
    op.create_index('ix_archive_message_conversation_seq', 'archive_message', ['conversation', 'seq'], unique=False)
    op.create_table('archive_cursor',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', _ID, nullable=False),
    sa.Column('updated_at', _AT, nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('review_case',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('message_seq', _ID, nullable=False),
    sa.Column('rule', sa.String(length=64), nullable=False),
    sa.Column('hits', sa.JSON(), nullable=False),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('assignee', sa.String(length=64), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('opened_at', _AT, nullable=False),
    sa.Column('updated_at', _AT, nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_seq')
    )
    op.create_index('ix_review_case_rule', 'review_case', ['rule'], unique=False)
    op.create_index('ix_review_case_status', 'review_case', ['status'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_review_case_status', table_name='review_case')
    op.drop_index('ix_review_case_rule', table_name='review_case')
    op.drop_table('review_case')
    op.drop_table('archive_cursor')
    op.drop_index('ix_archive_message_conversation_seq', table_name='archive_message')
    op.drop_table('archive_message')
