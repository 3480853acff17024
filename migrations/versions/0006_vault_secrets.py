"""vault secrets

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 11:23:03.173130
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


import vault.sqltypes

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('vault_secret',
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('label', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('dek_version', sa.Integer(), nullable=False),
    sa.Column('ciphertext', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['vault_key.customer_id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', 'label')
    )


def downgrade() -> None:
    op.drop_table('vault_secret')
