"""What offers are about (their categories, and the listings' index of them), for customers' intents

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03 22:05:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0023'
down_revision: str | None = '0022'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('offer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('categories', sa.JSON(), server_default='[]', nullable=False))
    op.create_table('directory_category',
    sa.Column('offer_id', sa.Uuid(), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['offer_id'], ['directory_listing.offer_id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('offer_id', 'category')
    )
    with op.batch_alter_table('directory_category', schema=None) as batch_op:
        batch_op.create_index('ix_directory_category_name', ['category', 'offer_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('directory_category', schema=None) as batch_op:
        batch_op.drop_index('ix_directory_category_name')
    op.drop_table('directory_category')
    with op.batch_alter_table('offer', schema=None) as batch_op:
        batch_op.drop_column('categories')
