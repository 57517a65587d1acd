"""feedback: feedback_answer (one row per answered survey round)

Revision ID: feedback_0001
Revises: membership_0001
Create Date: 2026-12-07 07:40:00

Written by hand (the lead regenerates migrations from scrm.adapters.db.models*).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import scrm.adapters.db.types

revision = 'feedback_0001'
down_revision = 'membership_0001'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('feedback_answer',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('token_id', sa.String(length=64), nullable=False),
    sa.Column('survey', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('external_userid', sa.String(length=128), nullable=False),
    sa.Column('sender', sa.String(length=64), nullable=False),
    sa.Column('material_id', sa.String(length=128), nullable=False),
    sa.Column('occurrence', sa.String(length=512), nullable=True),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('sent_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('answered_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('branch', sa.String(length=128), nullable=False),
    sa.Column('tier', sa.String(length=32), nullable=True),
    sa.Column('segments', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_id')
    )
    op.create_index('ix_feedback_answer_survey_day', 'feedback_answer', ['survey', 'day'], unique=False)
    op.create_index('ix_feedback_answer_customer', 'feedback_answer', ['external_userid', 'answered_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_feedback_answer_customer', table_name='feedback_answer')
    op.drop_index('ix_feedback_answer_survey_day', table_name='feedback_answer')
    op.drop_table('feedback_answer')
