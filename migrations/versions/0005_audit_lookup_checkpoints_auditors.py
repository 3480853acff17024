"""audit entries index, checkpoints, auditors; access records go to the log

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 10:33:55.058375
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import op

import vault.sqltypes

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
    _append(connection, [(_profile_read(row), row.customer_id, row.brand_id) for row in rows], rows[-1].created_at)


# Frozen code: the one allowed copy. A migration is a historical document; it must do what it did at
# revision 0005 whatever the live code becomes, so it imports nothing from broker (not `broker.audit`'s
# tree or entries, nor the transparency-log primitive in clients/auditor/tlog). Below, as they stood at
# 0005: a profile.read entry's bytes (format version 1, RFC 8785 JSON, which for these strings is the
# standard library's sorted compact JSON) and the log's append (RFC 9162 leaf and node hashes, the
# hash of every complete subtree, the head row), over the tables of 0005 (no `audit_entry.grant_id`).
# Do not "fix" it to match later code, and do not call it from anywhere else.

_ENTRIES = sa.table(
    'audit_entry',
    sa.column('index', sa.BigInteger()),
    sa.column('entry', sa.LargeBinary()),
    sa.column('leaf_hash', sa.LargeBinary()),
    sa.column('created_at', vault.sqltypes.UTCDateTime()),
    sa.column('kind', sa.String()),
    sa.column('customer_id', sa.Uuid()),
    sa.column('brand_id', sa.Uuid()),
)
_NODES = sa.table(
    'audit_node', sa.column('level', sa.Integer()), sa.column('position', sa.BigInteger()),
    sa.column('hash', sa.LargeBinary()),
)
_HEAD = sa.table('audit_head', sa.column('id', sa.Integer()), sa.column('size', sa.BigInteger()))
_PROFILE_READ = 'profile.read'


def _profile_read(row: Any) -> bytes:
    """The entry of one recorded read: its non-empty attributes as canonical JSON."""
    document: dict[str, Any] = {
        'v': 1,
        'kind': _PROFILE_READ,
        'at': row.created_at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ'),
        'actor': 'brand',
        'request_id': row.request_id,
        'brand': str(row.brand_id),
        'grant': str(row.grant_id),
        'fields': None if row.fields is None else list(row.fields),
        'purpose': row.purpose,
    }
    present = {key: value for key, value in document.items() if value is not None}
    return json.dumps(present, sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode()


def _append(connection: sa.Connection, batch: list[tuple[bytes, Any, Any]], at: datetime) -> None:
    """Append (entry, customer id, brand id) in order to the log, with the subtrees each completes."""
    start = connection.execute(sa.select(_HEAD.c.size).where(_HEAD.c.id == 1).with_for_update()).scalar()
    if start is None:
        connection.execute(_HEAD.insert().values(id=1, size=0))
        start = 0
    edge: list[bytes] = []  # hashes of the complete subtrees of [0, start), the largest (leftmost) first
    covered = 0
    for level in reversed(range(start.bit_length())):
        if start >> level & 1:
            where = (_NODES.c.level == level) & (_NODES.c.position == covered >> level)
            edge.append(connection.execute(sa.select(_NODES.c.hash).where(where)).scalar_one())
            covered += 1 << level
    entries: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    for index, (entry, customer_id, brand_id) in enumerate(batch, start):
        digest = hashlib.sha256(b'\x00' + entry).digest()
        entries.append({
            'index': index, 'entry': entry, 'leaf_hash': digest, 'created_at': at, 'kind': _PROFILE_READ,
            'customer_id': customer_id, 'brand_id': brand_id,
        })
        level, position = 0, index
        nodes.append({'level': level, 'position': position, 'hash': digest})
        while position & 1:  # a right child completes its parent
            digest = hashlib.sha256(b'\x01' + edge.pop() + digest).digest()
            level, position = level + 1, position >> 1
            nodes.append({'level': level, 'position': position, 'hash': digest})
        edge.append(digest)
    connection.execute(_ENTRIES.insert(), entries)
    connection.execute(_NODES.insert(), nodes)
    connection.execute(_HEAD.update().where(_HEAD.c.id == 1).values(size=start + len(batch)))
