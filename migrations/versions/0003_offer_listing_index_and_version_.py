"""offer listing index and version uniqueness

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 09:10:31.867963
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


import vault.sqltypes

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('offer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_offer_brand_id'))
        batch_op.drop_index(batch_op.f('ix_offer_lineage_id'))
        batch_op.create_index('ix_offer_brand_page', ['brand_id', 'created_at', 'id'], unique=False)
        batch_op.create_unique_constraint('uq_offer_lineage_version', ['lineage_id', 'version'])



def downgrade() -> None:
    with op.batch_alter_table('offer', schema=None) as batch_op:
        batch_op.drop_constraint('uq_offer_lineage_version', type_='unique')
        batch_op.drop_index('ix_offer_brand_page')
        batch_op.create_index(batch_op.f('ix_offer_lineage_id'), ['lineage_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_offer_brand_id'), ['brand_id'], unique=False)

