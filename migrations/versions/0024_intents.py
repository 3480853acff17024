"""Customers' intents (no customer id: a keyed blind index of the owner, a random handle for brands)
and brands' answers to them

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03 22:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vault.sqltypes

revision: str = '0024'
down_revision: str | None = '0023'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('intent',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('handle', sa.String(length=32), nullable=False),
    sa.Column('owner', sa.LargeBinary(length=32), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('horizon', sa.String(length=16), nullable=False),
    sa.Column('budget_band', sa.String(length=16), nullable=True),
    sa.Column('region', sa.String(length=16), nullable=True),
    sa.Column('age_band', sa.String(length=16), nullable=True),
    sa.Column('only_brands', sa.JSON(), nullable=True),
    sa.Column('created_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('handle')
    )
    with op.batch_alter_table('intent', schema=None) as batch_op:
        batch_op.create_index('ix_intent_category_page', ['category', 'created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_intent_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index('ix_intent_owner', ['owner', 'created_at'], unique=False)

    op.create_table('intent_answer',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('intent_id', sa.Uuid(), nullable=False),
    sa.Column('brand_id', sa.Uuid(), nullable=False),
    sa.Column('offer_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['brand_id'], ['brand.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['intent_id'], ['intent.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['offer_id'], ['offer.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('intent_answer', schema=None) as batch_op:
        batch_op.create_index('ix_intent_answer_brand_day', ['brand_id', 'created_at'], unique=False)
        batch_op.create_index('ix_intent_answer_once', ['intent_id', 'brand_id'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('intent_answer', schema=None) as batch_op:
        batch_op.drop_index('ix_intent_answer_once')
        batch_op.drop_index('ix_intent_answer_brand_day')
    op.drop_table('intent_answer')
    with op.batch_alter_table('intent', schema=None) as batch_op:
        batch_op.drop_index('ix_intent_owner')
        batch_op.drop_index(batch_op.f('ix_intent_expires_at'))
        batch_op.drop_index('ix_intent_category_page')
    op.drop_table('intent')
