"""sessions (last seen, device) and security activity

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 21:04:03.478040
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


import vault.sqltypes

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('security_event',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('device', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('created_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('security_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_security_event_created_at'), ['created_at'], unique=False)
        batch_op.create_index('ix_security_event_listing', ['customer_id', 'created_at', 'id'], unique=False)

    with op.batch_alter_table('customer_session', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_seen_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('device', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
    # Sessions open before this migration were last seen (as far as we know) when they began.
    sessions = sa.table('customer_session', sa.column('created_at'), sa.column('last_seen_at'), sa.column('device'))
    op.execute(sessions.update().values(last_seen_at=sessions.c.created_at, device='Unknown device'))
    with op.batch_alter_table('customer_session', schema=None) as batch_op:
        batch_op.alter_column(
            'last_seen_at', existing_type=vault.sqltypes.UTCDateTime(timezone=True), nullable=False
        )
        batch_op.alter_column(
            'device', existing_type=sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False
        )
        batch_op.create_index('ix_customer_session_listing', ['customer_id', 'created_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('customer_session', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_session_listing')
        batch_op.drop_column('device')
        batch_op.drop_column('last_seen_at')

    with op.batch_alter_table('security_event', schema=None) as batch_op:
        batch_op.drop_index('ix_security_event_listing')
        batch_op.drop_index(batch_op.f('ix_security_event_created_at'))

    op.drop_table('security_event')
