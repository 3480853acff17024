"""mail outbox; email verification codes; customers' look-alike skeleton index and verification time

Existing accounts start unverified (email_verified_at NULL: nothing ever confirmed their address, so
brands stop receiving it until the owner confirms it from the portal) and without a skeleton: the
addresses are only in the vault, encrypted, so each account's skeleton is computed when its owner
next logs in (the login carries the address in clear).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 21:04:22.226379
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


import vault.sqltypes

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('email_code',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('purpose', sa.Enum('sign-up', 'change', name='codepurpose', native_enum=False, length=32), nullable=False),
    sa.Column('code_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('email_index', sa.LargeBinary(length=32), nullable=False),
    sa.Column('created_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code_hash')
    )
    with op.batch_alter_table('email_code', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_email_code_customer_id'), ['customer_id'], unique=False)

    op.create_table('mail_message',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('template', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('status', sa.Enum('pending', 'delivered', 'failed', name='mailstatus', native_enum=False, length=32), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('created_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('next_attempt_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('mail_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mail_message_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index('ix_mail_message_due', ['status', 'next_attempt_at'], unique=False)

    # Plain ALTER TABLE, not a batch: a batch rebuilds `customer` on SQLite, and dropping the old table
    # would cascade into every table that references it (grants, sessions, …).
    op.add_column('customer', sa.Column('email_skeleton', sa.LargeBinary(length=32), nullable=True))
    op.add_column('customer', sa.Column('email_verified_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True))
    op.create_index('ix_customer_email_skeleton', 'customer', ['email_skeleton'], unique=False)



def downgrade() -> None:
    # ALTER TABLE … DROP COLUMN (SQLite >= 3.35) rather than a batch rebuild, which would cascade.
    op.drop_index('ix_customer_email_skeleton', table_name='customer')
    op.drop_column('customer', 'email_verified_at')
    op.drop_column('customer', 'email_skeleton')

    with op.batch_alter_table('mail_message', schema=None) as batch_op:
        batch_op.drop_index('ix_mail_message_due')
        batch_op.drop_index(batch_op.f('ix_mail_message_customer_id'))

    op.drop_table('mail_message')
    with op.batch_alter_table('email_code', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_email_code_customer_id'))

    op.drop_table('email_code')
