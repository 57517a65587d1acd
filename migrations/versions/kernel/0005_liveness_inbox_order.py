"""kernel: registry of live instances; inbox priority and order key; shared rate counts

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 19:30:00

``service_instance``: each running instance beats there, so the claims of a killed one are
released in seconds, not when their leases expire (scrm.kernel.liveness). ``inbox_event``
gains ``priority`` (an event carrying a welcome code is claimed first) and ``order_key`` (one
relation's or chat's events are handled in arrival order while others run concurrently), with
partial indexes over pending rows for the claim. Existing rows get priority 100 and no key.
``rate_slot``: per-member app-message counts every instance shares (WeCom drops the excess).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from scrm.adapters.db.types import UTCDateTime

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

PENDING = "status = 'pending'"


def upgrade() -> None:
    op.create_table(
        'service_instance',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('host', sa.String(length=64), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('pid_space', sa.String(length=96), nullable=False),
        sa.Column('process_start', sa.String(length=32), nullable=False),
        sa.Column('started_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('heartbeat_at', UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'rate_slot',
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('slot', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('used', sa.Integer(), nullable=False),
        sa.Column('forget_at', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('key', 'slot'),
    )
    with op.batch_alter_table('inbox_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('priority', sa.Integer(), server_default=sa.text('100'), nullable=False))
        batch_op.add_column(sa.Column('order_key', sa.String(length=160), server_default=sa.text("''"),
                                      nullable=False))
        batch_op.create_index('ix_inbox_claim', ['priority', 'id'], unique=False,
                              sqlite_where=sa.text(PENDING), postgresql_where=sa.text(PENDING))
        batch_op.create_index('ix_inbox_order', ['order_key', 'id'], unique=False,
                              sqlite_where=sa.text(PENDING), postgresql_where=sa.text(PENDING))


def downgrade() -> None:
    with op.batch_alter_table('inbox_event', schema=None) as batch_op:
        batch_op.drop_index('ix_inbox_order', sqlite_where=sa.text(PENDING), postgresql_where=sa.text(PENDING))
        batch_op.drop_index('ix_inbox_claim', sqlite_where=sa.text(PENDING), postgresql_where=sa.text(PENDING))
        batch_op.drop_column('order_key')
        batch_op.drop_column('priority')
    op.drop_table('rate_slot')
    op.drop_table('service_instance')
