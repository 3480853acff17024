"""account deletion keeps others' rights: no cascade from the customer to grants, value, receipts

Grants, value obligations and consent receipts named their customer with a foreign key that cascaded
on delete, so deleting an account erased what brands still owed, their deletion duties and their
receipts. The foreign keys go; `customer_id` stays (a deleted account has an `account_tombstone`).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 21:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ('consent_receipt', 'value_obligation', 'consent_grant')  # children first
# SQLite keeps these constraints unnamed: batch mode names them by this convention to drop them.
_CONVENTION = {'fk': 'fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s'}


def _customer_fk(table: str) -> str:
    """The name of `table`'s foreign key to `customer` (PostgreSQL's own, or the convention's)."""
    for fk in sa.inspect(op.get_bind()).get_foreign_keys(table):
        if fk['referred_table'] == 'customer' and fk['constrained_columns'] == ['customer_id']:
            return fk['name'] or f'fk_{table}_customer_id_customer'
    raise LookupError(f'{table} has no foreign key to customer')


def upgrade() -> None:
    for table in _TABLES:
        name = _customer_fk(table)
        with op.batch_alter_table(table, schema=None, naming_convention=_CONVENTION) as batch_op:
            batch_op.drop_constraint(name, type_='foreignkey')


def downgrade() -> None:
    # Before 0012 these rows could not outlive their customer: drop the deleted accounts' ones (their
    # children, such as deliveries and token families, cascade from the grant and the obligation).
    customers = sa.select(sa.table('customer', sa.column('id')).c.id)
    for table in _TABLES:
        rows = sa.table(table, sa.column('customer_id'))
        op.execute(rows.delete().where(rows.c.customer_id.not_in(customers)))
    for table in reversed(_TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_foreign_key(
                f'{table}_customer_id_fkey', 'customer', ['customer_id'], ['id'], ondelete='CASCADE'
            )
