"""Disputes decided by an auditor: escalations, the customer's rejection of an answer, and a second
delivery for an obligation whose dispute was upheld

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 16:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


import vault.sqltypes

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None



def _delivery(*, unique: bool) -> sa.Table:
    """value_delivery as 0007 made it, with or without its unique obligation_id."""
    return sa.Table('value_delivery', sa.MetaData(),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('obligation_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=True),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=True),
    sa.Column('delivered_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['obligation_id'], ['value_obligation.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    *([sa.UniqueConstraint('obligation_id', name='value_delivery_obligation_id_key')] if unique else []),
    )


def upgrade() -> None:
    with op.batch_alter_table('value_obligation', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('answer_rejected_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True)
        )
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite's unique constraint has no name to drop: copy the table into one without it.
        with op.batch_alter_table('value_delivery', copy_from=_delivery(unique=False), recreate='always') as batch_op:
            batch_op.create_index('ix_value_delivery_obligation', ['obligation_id', 'delivered_at'], unique=False)
    else:
        op.drop_constraint('value_delivery_obligation_id_key', 'value_delivery', type_='unique')
        op.create_index('ix_value_delivery_obligation', 'value_delivery', ['obligation_id', 'delivered_at'])
    op.create_table('value_escalation',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('obligation_id', sa.Uuid(), nullable=False),
    sa.Column('grant_id', sa.Uuid(), nullable=False),
    sa.Column('brand_id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('disputed_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('escalated_by', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('escalated_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.Enum('awaiting_customer', 'open', 'decided', 'declined', 'withdrawn', name='escalationstatus', native_enum=False, length=32, create_constraint=False), nullable=False),
    sa.Column('status_changed_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('shared_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.Enum('upheld', 'rejected', name='outcome', native_enum=False, length=32, create_constraint=False), nullable=True),
    sa.Column('decided_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.Uuid(), nullable=True),
    sa.Column('reasons_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('redeliver_by', vault.sqltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('receipt_id', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['brand_id'], ['brand.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['obligation_id'], ['value_obligation.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('value_escalation', schema=None) as batch_op:
        batch_op.create_index('ix_value_escalation_dispute', ['obligation_id', 'disputed_at'], unique=True)
        batch_op.create_index('ix_value_escalation_status_page', ['status', 'escalated_at', 'id'], unique=False)
        batch_op.create_index('ix_value_escalation_brand_decided', ['brand_id', 'outcome', 'decided_at'], unique=False)


def downgrade() -> None:
    op.drop_table('value_escalation')
    # An obligation delivered again keeps its latest delivery only: the unique constraint returns.
    op.execute(
        "DELETE FROM value_delivery WHERE EXISTS (SELECT 1 FROM value_delivery later "
        "WHERE later.obligation_id = value_delivery.obligation_id AND later.delivered_at > value_delivery.delivered_at)"
    )
    op.drop_index('ix_value_delivery_obligation', table_name='value_delivery')
    if op.get_bind().dialect.name == 'sqlite':
        with op.batch_alter_table('value_delivery', copy_from=_delivery(unique=True), recreate='always'):
            pass
    else:
        op.create_unique_constraint('value_delivery_obligation_id_key', 'value_delivery', ['obligation_id'])
    with op.batch_alter_table('value_obligation', schema=None) as batch_op:
        batch_op.drop_column('answer_rejected_at')
