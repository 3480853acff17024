"""Customers' ratings of brands, after a confirmed delivery or a grant's end (their words are sealed
in the vault's secrets)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03 21:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0022'
down_revision: str | None = '0021'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('brand_rating',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('grant_id', sa.Uuid(), nullable=False),
    sa.Column('brand_id', sa.Uuid(), nullable=False),
    sa.Column('rater', sa.LargeBinary(length=32), nullable=False),
    sa.Column('occasion_key', sa.String(length=64), nullable=False),
    sa.Column('rating', sa.Integer(), nullable=False),
    sa.Column('has_text', sa.Boolean(), nullable=False),
    sa.Column('share_text', sa.Boolean(), nullable=False),
    sa.Column('created_on', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['brand_id'], ['brand.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['grant_id'], ['consent_grant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('brand_rating', schema=None) as batch_op:
        batch_op.create_index('ix_brand_rating_brand_page', ['brand_id', 'created_on', 'id'], unique=False)
        batch_op.create_index('ix_brand_rating_once', ['grant_id', 'occasion_key'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('brand_rating', schema=None) as batch_op:
        batch_op.drop_index('ix_brand_rating_once')
        batch_op.drop_index('ix_brand_rating_brand_page')
    op.drop_table('brand_rating')
