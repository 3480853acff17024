"""retention, deletion attestation and renewal

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23 13:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
import sqlmodel
from alembic import op


import vault.sqltypes

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 5000


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
    _fill_deletion_due()
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


def _fill_deletion_due() -> None:
    """Grants that ended before this revision owe their deletion too: their end + the offer's retention
    (the lifecycle sweep then tells those already overdue, once each)."""
    connection = op.get_bind()
    when = vault.sqltypes.UTCDateTime(timezone=True)
    grants = sa.table(
        'consent_grant', sa.column('id', sa.Uuid), sa.column('offer_id', sa.Uuid), sa.column('status', sa.String),
        sa.column('status_changed_at', when), sa.column('deletion_due_at', when),
    )
    offers = sa.table('offer', sa.column('id', sa.Uuid), sa.column('retention_days', sa.Integer))
    while True:
        rows = connection.execute(
            sa.select(grants.c.id, grants.c.status_changed_at, offers.c.retention_days)
            .join(offers, offers.c.id == grants.c.offer_id)
            .where(grants.c.status.in_(['revoked', 'expired']), grants.c.deletion_due_at.is_(None))
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        connection.execute(
            grants.update().where(grants.c.id == sa.bindparam('g')).values(deletion_due_at=sa.bindparam('due')),
            [{'g': grant, 'due': ended + timedelta(days=days)} for grant, ended, days in rows],
        )
