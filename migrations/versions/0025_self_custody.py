"""Self-custody: the profile fields a customer's own key seals and the unlocks of that key (`vault.held`),
the grants' sealed copies (`broker.consent.sealed`) and their version, and which key holds a profile

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04 03:06:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vault.sqltypes

revision: str = '0025'
down_revision: str | None = '0024'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('vault_held_field',
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('dek_version', sa.Integer(), nullable=False),
    sa.Column('ciphertext', sa.LargeBinary(), nullable=False),
    sa.Column('updated_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['vault_key.customer_id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', 'name')
    )
    op.create_table('vault_held_unlock',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('passkey_id', sa.Uuid(), nullable=True),
    sa.Column('salt', sa.LargeBinary(), nullable=False),
    sa.Column('wrapped_dek', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['vault_key.customer_id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('vault_held_unlock', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vault_held_unlock_customer_id'), ['customer_id'], unique=False)

    op.create_table('sealed_copy',
    sa.Column('grant_id', sa.Uuid(), nullable=False),
    sa.Column('purpose', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('kid', sa.String(length=200), nullable=False),
    sa.Column('jwe', sa.Text(), nullable=False),
    sa.Column('stored_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['grant_id'], ['consent_grant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('grant_id', 'purpose')
    )
    with op.batch_alter_table('consent_grant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sealed_version', sa.Integer(), server_default='0', nullable=False))

    with op.batch_alter_table('vault_key', schema=None) as batch_op:
        batch_op.add_column(sa.Column('held_dek_version', sa.Integer(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('vault_key', schema=None) as batch_op:
        batch_op.drop_column('held_dek_version')

    with op.batch_alter_table('consent_grant', schema=None) as batch_op:
        batch_op.drop_column('sealed_version')

    op.drop_table('sealed_copy')
    with op.batch_alter_table('vault_held_unlock', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vault_held_unlock_customer_id'))

    op.drop_table('vault_held_unlock')
    op.drop_table('vault_held_field')
