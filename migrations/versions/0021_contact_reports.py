"""Contacts brands report making with customers, judged against the customers' preferences (the
preferences themselves are sealed in the vault's secrets: no table)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 21:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vault.sqltypes

revision: str = '0021'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('contact_report',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('grant_id', sa.Uuid(), nullable=False),
    sa.Column('brand_id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('purpose', sa.String(length=64), nullable=False),
    sa.Column('contacted_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reported_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('breaches', sa.JSON(), nullable=False),
    sa.Column('flagged', sa.Boolean(), nullable=False),
    sa.Column('preferences_version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['brand_id'], ['brand.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['grant_id'], ['consent_grant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('contact_report', schema=None) as batch_op:
        batch_op.create_index('ix_contact_report_customer_page', ['customer_id', 'contacted_at', 'id'], unique=False)
        batch_op.create_index('ix_contact_report_month', ['brand_id', 'customer_id', 'contacted_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_contact_report_grant_id'), ['grant_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('contact_report', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contact_report_grant_id'))
        batch_op.drop_index('ix_contact_report_month')
        batch_op.drop_index('ix_contact_report_customer_page')
    op.drop_table('contact_report')
