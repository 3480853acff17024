"""Withdrawal acknowledged by the brand: a grant's acknowledgement deadline, reminder and count of
reads attempted after its end, and the brand's statements

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 16:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


import vault.sqltypes

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Grants that ended before this revision owed no acknowledgement: their deadline stays empty.
    with op.batch_alter_table('consent_grant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('end_ack_due_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('end_acknowledged_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('end_ack_reminded_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reads_after_end', sa.Integer(), nullable=False, server_default='0'))
    op.create_table('grant_end_acknowledgement',
    sa.Column('grant_id', sa.Uuid(), nullable=False),
    sa.Column('brand_id', sa.Uuid(), nullable=False),
    sa.Column('acknowledged_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('stopped_processing_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deletion_by', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('method', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('statement', sa.Text(), nullable=True),
    sa.Column('brand_key', sa.JSON(), nullable=True),
    sa.Column('token_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('receipt_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['brand_id'], ['brand.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['grant_id'], ['consent_grant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('grant_id')
    )


def downgrade() -> None:
    op.drop_table('grant_end_acknowledgement')
    with op.batch_alter_table('consent_grant', schema=None) as batch_op:
        batch_op.drop_column('reads_after_end')
        batch_op.drop_column('end_ack_reminded_at')
        batch_op.drop_column('end_acknowledged_at')
        batch_op.drop_column('end_ack_due_at')
