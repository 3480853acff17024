"""OpenID Connect: what an authorization code's ID token will say, a brand's ID token algorithm and
its post-logout redirect URIs; dynamic registration (initial access tokens, contacts, policies, the
registration access token)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 13:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


import vault.sqltypes

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('authorization_code', schema=None) as batch_op:
        batch_op.add_column(sa.Column('nonce', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=True))
        batch_op.add_column(sa.Column('auth_time', vault.sqltypes.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('acr', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('amr', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
        batch_op.create_index('ix_authorization_code_nonce', ['brand_id', 'nonce'], unique=False)
    with op.batch_alter_table('brand', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                'id_token_signed_response_alg',
                sqlmodel.sql.sqltypes.AutoString(length=16),
                nullable=False,
                server_default='RS256',
            )
        )
        batch_op.add_column(sa.Column('post_logout_redirect_uris', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('contacts', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('policy_uri', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True))
        batch_op.add_column(sa.Column('tos_uri', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True))
        batch_op.add_column(sa.Column('registration_token_hash', sa.LargeBinary(length=32), nullable=True))
        batch_op.create_unique_constraint('uq_brand_registration_token_hash', ['registration_token_hash'])
        batch_op.add_column(sa.Column('private_key_jwt', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('jwks', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('deleted_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True))
    op.create_table('client_assertion',
    sa.Column('brand_id', sa.Uuid(), nullable=False),
    sa.Column('jti', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('expires_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['brand_id'], ['brand.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('brand_id', 'jti')
    )
    with op.batch_alter_table('client_assertion', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_client_assertion_expires_at'), ['expires_at'], unique=False)
    op.create_table('registration_token',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('uses_left', sa.Integer(), nullable=False),
    sa.Column('created_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )


def downgrade() -> None:
    op.drop_table('client_assertion')
    op.drop_table('registration_token')
    with op.batch_alter_table('brand', schema=None) as batch_op:
        batch_op.drop_column('deleted_at')
        batch_op.drop_column('jwks')
        batch_op.drop_column('private_key_jwt')
        batch_op.drop_constraint('uq_brand_registration_token_hash', type_='unique')
        batch_op.drop_column('registration_token_hash')
        batch_op.drop_column('tos_uri')
        batch_op.drop_column('policy_uri')
        batch_op.drop_column('contacts')
        batch_op.drop_column('post_logout_redirect_uris')
        batch_op.drop_column('id_token_signed_response_alg')
    with op.batch_alter_table('authorization_code', schema=None) as batch_op:
        batch_op.drop_index('ix_authorization_code_nonce')
        batch_op.drop_column('amr')
        batch_op.drop_column('acr')
        batch_op.drop_column('auth_time')
        batch_op.drop_column('nonce')
