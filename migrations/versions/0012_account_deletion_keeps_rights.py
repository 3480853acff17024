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


def _cascade_orphans() -> None:
    """Delete, as ON DELETE CASCADE would, every row whose cascading parent is gone, to a fixed point
    (migrations run with SQLite's foreign keys off, so the database does not do it there)."""
    found = sa.inspect(op.get_bind())
    cascading = [
        (table, fk)
        for table in found.get_table_names()
        for fk in found.get_foreign_keys(table)
        if (fk.get('options') or {}).get('ondelete', '').upper() == 'CASCADE'
        and len(fk['constrained_columns']) == 1
    ]
    deleted = True
    while deleted:
        deleted = False
        for table, fk in cascading:
            (column,), (referred,) = fk['constrained_columns'], fk['referred_columns']
            parents = sa.select(sa.table(fk['referred_table'], sa.column(referred)).c[referred])
            rows = sa.table(table, sa.column(column))
            result = op.get_bind().execute(
                rows.delete().where(rows.c[column].is_not(None), rows.c[column].not_in(parents))
            )
            deleted = deleted or result.rowcount > 0


def downgrade() -> None:
    # Before 0012 these rows could not outlive their customer: drop the deleted accounts' ones, and
    # what cascaded from them (token families, deliveries …).
    customers = sa.select(sa.table('customer', sa.column('id')).c.id)
    for table in _TABLES:
        rows = sa.table(table, sa.column('customer_id'))
        op.execute(rows.delete().where(rows.c.customer_id.not_in(customers)))
    _cascade_orphans()
    for table in reversed(_TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_foreign_key(
                f'{table}_customer_id_fkey', 'customer', ['customer_id'], ['id'], ondelete='CASCADE'
            )
