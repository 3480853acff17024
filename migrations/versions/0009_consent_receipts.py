"""consent receipts

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vault.sqltypes

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('consent_receipt',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('grant_id', sa.Uuid(), nullable=False),
    sa.Column('brand_id', sa.Uuid(), nullable=False),
    sa.Column('event', sa.String(length=16), nullable=False),
    sa.Column('audit_index', sa.BigInteger(), nullable=False),
    sa.Column('issued_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('jws', sa.Text(), nullable=False),
    sa.Column('signing_key', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['brand_id'], ['brand.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['grant_id'], ['consent_grant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('consent_receipt', schema=None) as batch_op:
        batch_op.create_index('ix_consent_receipt_customer_page', ['customer_id', 'audit_index'], unique=False)
        batch_op.create_index('ix_consent_receipt_grant_page', ['grant_id', 'audit_index'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('consent_receipt', schema=None) as batch_op:
        batch_op.drop_index('ix_consent_receipt_grant_page')
        batch_op.drop_index('ix_consent_receipt_customer_page')
    op.drop_table('consent_receipt')
