"""audit entries index, checkpoints, auditors; access records go to the log

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 10:33:55.058375
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import vault.sqltypes
from broker.audit import tree
from broker.audit.entries import Actor, Event, Kind

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_checkpoint',
    sa.Column('tree_size', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('root_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('tree_size')
    )
    op.create_table('auditor',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('token_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('created_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=40), server_default='', nullable=False))
        batch_op.add_column(sa.Column('customer_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('brand_id', sa.Uuid(), nullable=True))
        batch_op.create_index('ix_audit_entry_brand', ['brand_id', 'index'], unique=False)
        batch_op.create_index('ix_audit_entry_customer', ['customer_id', 'index'], unique=False)
    _move_access_records_into_the_log()
    with op.batch_alter_table('access_record', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_access_record_customer_id'))
        batch_op.drop_index('ix_access_record_grant_time')

    op.drop_table('access_record')


def downgrade() -> None:
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_entry_customer')
        batch_op.drop_index('ix_audit_entry_brand')
        batch_op.drop_column('brand_id')
        batch_op.drop_column('customer_id')
        batch_op.drop_column('kind')

    op.create_table('access_record',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('grant_id', sa.Uuid(), nullable=False),
    sa.Column('brand_id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('purpose', sa.String(length=64), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['brand_id'], ['brand.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['grant_id'], ['consent_grant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('access_record', schema=None) as batch_op:
        batch_op.create_index('ix_access_record_grant_time', ['grant_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_record_customer_id'), ['customer_id'], unique=False)

    op.drop_table('auditor')
    op.drop_table('audit_checkpoint')


def _move_access_records_into_the_log() -> None:
    """Before 0005, reads were recorded in `access_record`: append them to the audit log, oldest first,
    so no read's record is lost. (Their entries lack the pairwise subject: the key is not at hand here.)"""
    records = sa.table(
        'access_record',
        sa.column('id', sa.Uuid()),
        sa.column('grant_id', sa.Uuid()),
        sa.column('brand_id', sa.Uuid()),
        sa.column('customer_id', sa.Uuid()),
        sa.column('fields', sa.JSON()),
        sa.column('purpose', sa.String()),
        sa.column('request_id', sa.String()),
        sa.column('created_at', vault.sqltypes.UTCDateTime()),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(records).order_by(records.c.created_at, records.c.id)).all()
    if not rows:
        return
    batch = [
        (
            Event(
                kind=Kind.PROFILE_READ,
                at=row.created_at,
                actor=Actor.BRAND,
                request_id=row.request_id,
                brand=row.brand_id,
                grant=row.grant_id,
                fields=row.fields,
                purpose=row.purpose,
            ).canonical(),
            tree.Lookup(Kind.PROFILE_READ.value, row.customer_id, row.brand_id),
        )
        for row in rows
    ]
    with sqlmodel.Session(bind=connection) as session:
        tree.append_many(session, batch, at=rows[-1].created_at)
        session.flush()
