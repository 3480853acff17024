"""audit entries findable by grant

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 13:45:00.000000
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from uuid import UUID

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 5000


def upgrade() -> None:
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('grant_id', sa.Uuid(), nullable=True))
    _fill_grant_ids()
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.create_index('ix_audit_entry_grant', ['grant_id', 'index'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_entry_grant')
        batch_op.drop_column('grant_id')


def _fill_grant_ids() -> None:
    """Entries written before this revision name their grant inside the entry: copy it out."""
    connection = op.get_bind()
    entries = sa.table(
        'audit_entry', sa.column('index', sa.BigInteger), sa.column('entry', sa.LargeBinary),
        sa.column('grant_id', sa.Uuid),
    )
    after = -1
    while True:
        rows = connection.execute(
            sa.select(entries.c.index, entries.c.entry)
            .where(entries.c.index > after)
            .order_by(entries.c.index)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        updates = [
            {'i': index, 'g': UUID(grant)}
            for index, entry in rows
            if isinstance(grant := json.loads(entry).get('grant'), str)
        ]
        if updates:
            connection.execute(
                entries.update()
                .where(entries.c.index == sa.bindparam('i'))
                .values(grant_id=sa.bindparam('g')),
                updates,
            )
        after = rows[-1][0]
