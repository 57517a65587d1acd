"""console: sessions and the audit log of the operations console

Revision ID: console_0001
Revises: succession_0001
Create Date: 2026-12-07 01:10:00

Written by hand (the lead regenerates migrations from scrm.adapters.db.models*).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import scrm.adapters.db.types

revision = 'console_0001'
down_revision = 'succession_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('console_session',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('token_hash')
    )
    op.create_index('ix_console_session_expires_at', 'console_session', ['expires_at'], unique=False)
    op.create_table('console_audit',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.Text(), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('remote', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_console_audit_at', 'console_audit', ['at'], unique=False)
    op.create_index('ix_console_audit_actor', 'console_audit', ['actor', 'at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_console_audit_actor', table_name='console_audit')
    op.drop_index('ix_console_audit_at', table_name='console_audit')
    op.drop_table('console_audit')
    op.drop_index('ix_console_session_expires_at', table_name='console_session')
    op.drop_table('console_session')
