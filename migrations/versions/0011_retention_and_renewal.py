"""retention, deletion attestation and renewal

Revision ID: 0011
Revises: 0008
Create Date: 2026-11-23 13:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


import vault.sqltypes

revision: str = '0011'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('consent_grant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_confirmed_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('deletion_due_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('deletion_notified_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('deletion_outcome', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column('deletion_completed_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('deletion_attested_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True))
    # Every grant so far was last confirmed when it was made.
    grants = sa.table('consent_grant', sa.column('created_at'), sa.column('last_confirmed_at'))
    op.execute(grants.update().values(last_confirmed_at=grants.c.created_at))
    with op.batch_alter_table('consent_grant', schema=None) as batch_op:
        batch_op.alter_column(
            'last_confirmed_at', existing_type=vault.sqltypes.UTCDateTime(timezone=True), nullable=False
        )
        batch_op.create_index(
            'ix_consent_grant_deletion_sweep',
            ['deletion_notified_at', 'deletion_attested_at', 'deletion_due_at'],
            unique=False,
        )
        batch_op.create_index(
            'ix_consent_grant_deletion_overdue', ['deletion_attested_at', 'deletion_due_at', 'id'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('consent_grant', schema=None) as batch_op:
        batch_op.drop_index('ix_consent_grant_deletion_overdue')
        batch_op.drop_index('ix_consent_grant_deletion_sweep')
        batch_op.drop_column('deletion_attested_at')
        batch_op.drop_column('deletion_completed_at')
        batch_op.drop_column('deletion_outcome')
        batch_op.drop_column('deletion_notified_at')
        batch_op.drop_column('deletion_due_at')
        batch_op.drop_column('last_confirmed_at')
