"""Shapes of the auditor API's JSON answers. Bytes (entries, hashes) travel as standard base64
(RFC 4648 §4, with padding); hashes are SHA-256 per RFC 9162 §2.1."""

from __future__ import annotations

from pydantic import BaseModel, Field

_HASH = "standard base64 of a 32-byte SHA-256 hash"


class EntryPublic(BaseModel):
    """One log entry: its index and its exact bytes, whose leaf hash is SHA-256(0x00 ‖ bytes)."""

    index: int = Field(ge=0)
    entry: str = Field(description="standard base64 of the entry's exact bytes (RFC 8785 canonical JSON)")


class EntriesPublic(BaseModel):
    """A page of entries `[start, end)`, in index order."""

    start: int = Field(ge=0)
    end: int = Field(ge=0, description="exclusive; at most 10,000 entries after `start`")
    tree_size: int = Field(ge=0, description="the log's size when the page was read")
    entries: list[EntryPublic]
    next: int | None = Field(description="where the rest of the range starts; null after the last page")


class InclusionProofPublic(BaseModel):
    """RFC 9162 §2.1.3.1 PATH(index, D[tree_size]): the leaf's hash and its audit path, bottom up."""

    index: int = Field(ge=0)
    tree_size: int = Field(ge=1)
    leaf_hash: str = Field(description=_HASH)
    proof: list[str] = Field(description=f"each a {_HASH}")


class ConsistencyProofPublic(BaseModel):
    """RFC 9162 §2.1.4.1 PROOF(first, D[second]): the tree of `second` entries extends that of `first`."""

    first: int = Field(ge=0)
    second: int = Field(ge=0)
    proof: list[str] = Field(description=f"each a {_HASH}")
