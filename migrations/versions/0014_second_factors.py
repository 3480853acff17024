"""second factors: passkeys, TOTP, recovery codes, login challenges; how a session authenticated

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 21:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import vault.sqltypes

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _owner(nullable: bool = False) -> sa.Column:
    return sa.Column('customer_id', sa.Uuid(), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table('customer_session', schema=None) as batch_op:
        batch_op.add_column(sa.Column('authenticated_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('second_factor', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('auth_method', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False, server_default='password'))
    sessions = sa.table('customer_session', sa.column('created_at'), sa.column('authenticated_at'))
    op.execute(sessions.update().values(authenticated_at=sessions.c.created_at))
    with op.batch_alter_table('customer_session', schema=None) as batch_op:
        batch_op.alter_column('authenticated_at', existing_type=vault.sqltypes.UTCDateTime(timezone=True), nullable=False)

    op.create_table(
        'passkey',
        sa.Column('id', sa.Uuid(), nullable=False),
        _owner(),
        sa.Column('credential_id', sa.LargeBinary(length=1023), nullable=False),
        sa.Column('public_key', sa.LargeBinary(), nullable=False),
        sa.Column('sign_count', sa.Integer(), nullable=False),
        sa.Column('created_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_used_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('credential_id'),
    )
    op.create_index(op.f('ix_passkey_customer_id'), 'passkey', ['customer_id'], unique=False)
    op.create_table(
        'totp_factor',
        sa.Column('customer_id', sa.Uuid(), nullable=False),
        sa.Column('created_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column('confirmed_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_step', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('customer_id'),
    )
    op.create_table(
        'recovery_code',
        sa.Column('id', sa.Uuid(), nullable=False),
        _owner(),
        sa.Column('code_hash', sa.LargeBinary(length=32), nullable=False),
        sa.Column('created_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column('used_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('code_hash'),
    )
    op.create_index(op.f('ix_recovery_code_customer_id'), 'recovery_code', ['customer_id'], unique=False)
    op.create_table(
        'login_challenge',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('token_hash', sa.LargeBinary(length=32), nullable=True),
        sa.Column('challenge_hash', sa.LargeBinary(length=32), nullable=True),
        _owner(nullable=True),
        sa.Column('session_id', sa.Uuid(), nullable=True),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('expires_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['session_id'], ['customer_session.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'),
        sa.UniqueConstraint('challenge_hash'),
    )
    op.create_index(op.f('ix_login_challenge_customer_id'), 'login_challenge', ['customer_id'], unique=False)
    op.create_index(op.f('ix_login_challenge_expires_at'), 'login_challenge', ['expires_at'], unique=False)


def downgrade() -> None:
    op.drop_table('login_challenge')
    op.drop_table('recovery_code')
    op.drop_table('totp_factor')
    op.drop_table('passkey')
    with op.batch_alter_table('customer_session', schema=None) as batch_op:
        batch_op.drop_column('auth_method')
        batch_op.drop_column('second_factor')
        batch_op.drop_column('authenticated_at')
