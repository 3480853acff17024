"""value ledger

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 11:27:42.220515
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


import vault.sqltypes

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('value_obligation',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('grant_id', sa.Uuid(), nullable=False),
    sa.Column('brand_id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('schedule', sa.Enum('once', 'monthly', name='schedule', native_enum=False, length=32), nullable=False),
    sa.Column('period', sa.Integer(), nullable=False),
    sa.Column('declared', sa.JSON(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=True),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=True),
    sa.Column('due_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.Enum('owed', 'delivered', 'confirmed', 'disputed', 'cancelled', name='obligationstatus', native_enum=False, length=32), nullable=False),
    sa.Column('created_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status_changed_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('overdue_noticed_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('disputed_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('answered_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['brand_id'], ['brand.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['grant_id'], ['consent_grant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('value_obligation', schema=None) as batch_op:
        batch_op.create_index('ix_value_obligation_brand_status', ['brand_id', 'status'], unique=False)
        batch_op.create_index('ix_value_obligation_customer_page', ['customer_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_value_obligation_grant', ['grant_id', 'period'], unique=True)

    op.create_table('value_delivery',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('obligation_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=True),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=True),
    sa.Column('delivered_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['obligation_id'], ['value_obligation.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('obligation_id')
    )
    with op.batch_alter_table('consent_grant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('value_check_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('first_read_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('consent_grant', schema=None) as batch_op:
        batch_op.drop_column('first_read_at')
        batch_op.drop_column('value_check_at')

    op.drop_table('value_delivery')
    with op.batch_alter_table('value_obligation', schema=None) as batch_op:
        batch_op.drop_index('ix_value_obligation_grant')
        batch_op.drop_index('ix_value_obligation_customer_page')
        batch_op.drop_index('ix_value_obligation_brand_status')

    op.drop_table('value_obligation')
