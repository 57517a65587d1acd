"""compliance: marketing consent per category (customer_consent)

Revision ID: compliance_0002
Revises: compliance_0001
Create Date: 2026-12-07 04:35:00

Written by hand (the lead regenerates migrations from scrm.adapters.db.models*).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import scrm.adapters.db.types

revision = 'compliance_0002'
down_revision = 'compliance_0001'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('customer_consent',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('external_userid', sa.String(length=64), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('granted', sa.Boolean(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('by', sa.String(length=64), nullable=False),
    sa.Column('at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_customer_consent_customer', 'customer_consent', ['external_userid', 'category', 'at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_customer_consent_customer', table_name='customer_consent')
    op.drop_table('customer_consent')
