"""Deletion receipts: the signed evidence of an account's erasure, linked to nothing of the account

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-04 04:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vault.sqltypes

revision: str = '0026'
down_revision: str | None = '0025'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('deletion_receipt',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('audit_index', sa.BigInteger(), nullable=False),
    sa.Column('issued_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('jws', sa.Text(), nullable=False),
    sa.Column('signing_key', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('audit_index')
    )


def downgrade() -> None:
    op.drop_table('deletion_receipt')
