"""campaigns: experiment and experiment_exposure — A/B experiments on SOP steps

Revision ID: campaigns_0001
Revises: console_0005
Create Date: 2026-12-07 05:30:00

Written by hand (the lead regenerates migrations from scrm.adapters.db.models*).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import scrm.adapters.db.types

revision = 'campaigns_0001'
down_revision = 'console_0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('experiment',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=128), nullable=False),
    sa.Column('step', sa.String(length=256), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('origin', sa.String(length=256), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('experiment_exposure',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('experiment', sa.String(length=64), nullable=False),
    sa.Column('customer', sa.String(length=128), nullable=False),
    sa.Column('variant', sa.String(length=64), nullable=False),
    sa.Column('at', scrm.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('experiment', 'customer', name='uq_experiment_exposure')
    )
    op.create_index('ix_experiment_exposure_variant', 'experiment_exposure', ['experiment', 'variant'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_experiment_exposure_variant', table_name='experiment_exposure')
    op.drop_table('experiment_exposure')
    op.drop_table('experiment')
