"""accounts and vault

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-23 08:21:04.693924
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


import vault.sqltypes

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('account_tombstone',
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('deleted_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('customer_id')
    )
    op.create_table('customer',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('email_index', sa.LargeBinary(length=32), nullable=False),
    sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('created_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('email_index')
    )
    op.create_table('login_throttle',
    sa.Column('token', sa.LargeBinary(length=32), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('window_started_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('locked_until', vault.sqltypes.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('token')
    )
    op.create_table('vault_key',
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('kek_version', sa.Integer(), nullable=False),
    sa.Column('wrapped_dek', sa.LargeBinary(), nullable=False),
    sa.Column('dek_version', sa.Integer(), nullable=False),
    sa.Column('seal_count', sa.Integer(), nullable=False),
    sa.Column('created_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('rotated_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('customer_id')
    )
    with op.batch_alter_table('vault_key', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vault_key_kek_version'), ['kek_version'], unique=False)

    op.create_table('customer_session',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('created_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('customer_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_session_customer_id'), ['customer_id'], unique=False)

    op.create_table('vault_field',
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('dek_version', sa.Integer(), nullable=False),
    sa.Column('ciphertext', sa.LargeBinary(), nullable=False),
    sa.Column('updated_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['vault_key.customer_id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', 'name')
    )


def downgrade() -> None:
    op.drop_table('vault_field')
    with op.batch_alter_table('customer_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_session_customer_id'))

    op.drop_table('customer_session')
    with op.batch_alter_table('vault_key', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vault_key_kek_version'))

    op.drop_table('vault_key')
    op.drop_table('login_throttle')
    op.drop_table('customer')
    op.drop_table('account_tombstone')
