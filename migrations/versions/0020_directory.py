"""The offer directory: offers a brand lists, the listings customers browse (with what their filters
and sorts read), grants a customer starts there (which the brand may decline), and the grant tickets
spent for their tokens

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 18:36:46.742373
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import vault.sqltypes

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('directory_listing',
    sa.Column('offer_id', sa.Uuid(), nullable=False),
    sa.Column('brand_id', sa.Uuid(), nullable=False),
    sa.Column('listed_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('value_kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('value_group', sa.Integer(), nullable=False),
    sa.Column('value_scale', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('value_rank', sa.BigInteger(), nullable=False),
    sa.Column('field_count', sa.Integer(), nullable=False),
    sa.Column('duration_days', sa.Integer(), nullable=False),
    sa.Column('retention_days', sa.Integer(), nullable=False),
    sa.Column('recipient_count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['brand_id'], ['brand.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['offer_id'], ['offer.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('offer_id')
    )
    with op.batch_alter_table('directory_listing', schema=None) as batch_op:
        batch_op.create_index('ix_directory_duration', ['duration_days', 'offer_id'], unique=False)
        batch_op.create_index('ix_directory_fields', ['field_count', 'offer_id'], unique=False)
        batch_op.create_index('ix_directory_newest', ['listed_at', 'offer_id'], unique=False)
        batch_op.create_index('ix_directory_retention', ['retention_days', 'offer_id'], unique=False)
        batch_op.create_index(
            'ix_directory_value', ['value_group', 'value_scale', 'value_rank', 'offer_id'], unique=False
        )

    op.create_table('directory_field',
    sa.Column('offer_id', sa.Uuid(), nullable=False),
    sa.Column('field', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('required', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['offer_id'], ['directory_listing.offer_id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('offer_id', 'field')
    )
    with op.batch_alter_table('directory_field', schema=None) as batch_op:
        batch_op.create_index('ix_directory_field_name', ['field', 'offer_id'], unique=False)

    op.create_table('directory_purpose',
    sa.Column('offer_id', sa.Uuid(), nullable=False),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.ForeignKeyConstraint(['offer_id'], ['directory_listing.offer_id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('offer_id', 'purpose')
    )
    with op.batch_alter_table('directory_purpose', schema=None) as batch_op:
        batch_op.create_index('ix_directory_purpose_name', ['purpose', 'offer_id'], unique=False)

    op.create_table('grant_ticket_use',
    sa.Column('jti', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('grant_id', sa.Uuid(), nullable=False),
    sa.Column('used_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['grant_id'], ['consent_grant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('jti')
    )
    with op.batch_alter_table('grant_ticket_use', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grant_ticket_use_grant_id'), ['grant_id'], unique=False)

    with op.batch_alter_table('consent_grant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('started_in_directory', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('decline_by', vault.sqltypes.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('declined_at', vault.sqltypes.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('offer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('listed', sa.Boolean(), server_default=sa.false(), nullable=False))



def downgrade() -> None:
    # Listings and spent tickets go; grants started in the directory stay, as ordinary grants.
    with op.batch_alter_table('offer', schema=None) as batch_op:
        batch_op.drop_column('listed')

    with op.batch_alter_table('consent_grant', schema=None) as batch_op:
        batch_op.drop_column('declined_at')
        batch_op.drop_column('decline_by')
        batch_op.drop_column('started_in_directory')

    with op.batch_alter_table('grant_ticket_use', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grant_ticket_use_grant_id'))

    op.drop_table('grant_ticket_use')
    with op.batch_alter_table('directory_purpose', schema=None) as batch_op:
        batch_op.drop_index('ix_directory_purpose_name')

    op.drop_table('directory_purpose')
    with op.batch_alter_table('directory_field', schema=None) as batch_op:
        batch_op.drop_index('ix_directory_field_name')

    op.drop_table('directory_field')
    with op.batch_alter_table('directory_listing', schema=None) as batch_op:
        batch_op.drop_index('ix_directory_value')
        batch_op.drop_index('ix_directory_retention')
        batch_op.drop_index('ix_directory_newest')
        batch_op.drop_index('ix_directory_fields')
        batch_op.drop_index('ix_directory_duration')

    op.drop_table('directory_listing')
