"""The log as C2SP tlog-tiles (https://c2sp.org/tlog-tiles), read straight from the stored tree.

A hash tile at level L is 256 consecutive `AuditNode` rows at height 8·L (level 0: the leaf hashes),
and an entry bundle 256 consecutive `AuditEntry` rows: each one bounded range query on a primary key,
never a recomputation. Nodes and entries are written once and never change, so a full tile, and a
partial tile of a given width, is the same bytes for ever: the API serves them with long-lived caching.

A tile the log does not reach yet (fewer than W nodes or entries stored) is None: the API's 404. A
partial tile of width W is served whenever W nodes exist, even once the full tile does, as the spec
lets clients that saw an older checkpoint ask for it. Path syntax and widths are `clients.auditor.tlog`.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session

from clients.auditor.tlog import TILE_WIDTH, encode_bundle
from clients.auditor.tlog.tiles import TILE_HEIGHT

__all__ = ["entry_bundle", "hash_tile"]

_MAX_POSITION = 2**63 - 1  # BIGINT


def hash_tile(session: Session, level: int, index: int, width: int = TILE_WIDTH) -> bytes | None:
    """The `width` hashes of tile `index` at `level`, concatenated; None if the log does not reach it."""
    first, stop = index * TILE_WIDTH, index * TILE_WIDTH + width
    if stop > _MAX_POSITION:
        return None
    rows = session.connection().execute(
        text(
            "SELECT hash FROM audit_node WHERE level = :level AND position >= :first AND position < :stop "
            "ORDER BY position"
        ),
        {"level": level * TILE_HEIGHT, "first": first, "stop": stop},
    )
    hashes = [row[0] for row in rows]
    return b"".join(hashes) if len(hashes) == width else None


def entry_bundle(session: Session, index: int, width: int = TILE_WIDTH) -> bytes | None:
    """Entries `index`·256 … + `width` - 1 as an entry bundle; None if the log does not reach them."""
    first, stop = index * TILE_WIDTH, index * TILE_WIDTH + width
    if stop > _MAX_POSITION:
        return None
    rows = session.connection().execute(
        text('SELECT entry FROM audit_entry WHERE "index" >= :first AND "index" < :stop ORDER BY "index"'),
        {"first": first, "stop": stop},
    )
    entries = [bytes(row[0]) for row in rows]
    return encode_bundle(entries) if len(entries) == width else None
