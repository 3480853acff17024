"""Reads bound to a purpose: an offer's several purposes, each with its explanation and fields, and
the fields a grant gives for each purpose agreed to (both empty for single-purpose offers and the
grants made before: one purpose for all the fields)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 17:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('offer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purposes', sa.JSON(), nullable=True))
    with op.batch_alter_table('consent_grant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purpose_fields', sa.JSON(), nullable=True))


def downgrade() -> None:
    # A grant of several purposes keeps its fields and first purpose; which field went with which
    # purpose is lost (reads then serve all its fields for its first purpose).
    with op.batch_alter_table('consent_grant', schema=None) as batch_op:
        batch_op.drop_column('purpose_fields')
    with op.batch_alter_table('offer', schema=None) as batch_op:
        batch_op.drop_column('purposes')
