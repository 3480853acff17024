"""Merkle tree hashing and proofs of RFC 9162 (Certificate Transparency v2), §2.1, with SHA-256.

- `leaf_hash` and `node_hash` are the domain-separated hashes of §2.1.1; `root_hash` is the MTH.
- `verify_inclusion` (§2.1.3.2) and `verify_consistency` (§2.1.4.2) answer True or False and never
  raise: malformed input (an index outside the tree, sizes out of order, a hash that is not 32 bytes)
  is simply a proof that does not verify.
- `inclusion_proof` (§2.1.3.1 PATH) and `consistency_proof` (§2.1.4.1 PROOF) are the reference
  generators; they raise `ValueError` on arguments that name no proof.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "HASH_SIZE",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    """The hash of a log entry: SHA-256(0x00 ‖ entry) (RFC 9162 §2.1.1)."""
    return hashlib.sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: SHA-256(0x01 ‖ left ‖ right) (RFC 9162 §2.1.1)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash (MTH) of a tree whose leaves hash to `leaf_hashes` (RFC 9162 §2.1.1).

    The empty tree hashes to SHA-256 of the empty string. Raises `ValueError` if a leaf hash is not
    32 bytes.
    """
    _check_hashes(leaf_hashes)
    if not leaf_hashes:
        return _EMPTY_ROOT
    return _mth(leaf_hashes, 0, len(leaf_hashes))


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """The inclusion proof PATH(index, D[n]) of RFC 9162 §2.1.3.1, from the leaf up to the root.

    Raises `ValueError` unless 0 <= index < len(leaf_hashes) and every leaf hash is 32 bytes.
    """
    _check_hashes(leaf_hashes)
    if not 0 <= index < len(leaf_hashes):
        raise ValueError(f"leaf index {index} is outside a tree of size {len(leaf_hashes)}")
    return _path(leaf_hashes, index, 0, len(leaf_hashes))


def consistency_proof(leaf_hashes: Sequence[bytes], first_size: int) -> list[bytes]:
    """The consistency proof PROOF(first_size, D[n]) of RFC 9162 §2.1.4.1.

    The proof is empty when `first_size` is 0 or n (every tree extends the empty tree and itself).
    Raises `ValueError` unless 0 <= first_size <= len(leaf_hashes) and every leaf hash is 32 bytes.
    """
    _check_hashes(leaf_hashes)
    size = len(leaf_hashes)
    if not 0 <= first_size <= size:
        raise ValueError(f"first size {first_size} is outside 0..{size}")
    if first_size in (0, size):
        return []
    return _subproof(leaf_hashes, first_size, 0, size, complete=True)


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether `proof` shows the leaf hashing to `leaf_hash` at `index` in the tree `root` of
    `tree_size` leaves (RFC 9162 §2.1.3.2)."""
    if not 0 <= index < tree_size or not _all_hashes(leaf_hash, root, *proof):
        return False
    fn, sn = index, tree_size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # A last node without a sibling on its level: climb until it becomes a right child.
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    first_size: int, second_size: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether `proof` shows the tree `second_root` of `second_size` leaves extends the tree
    `first_root` of `first_size` leaves (RFC 9162 §2.1.4.2).

    Equal sizes verify with an empty proof and equal roots; a first size of 0 verifies with an
    empty proof when `first_root` is the empty tree's hash.
    """
    if not 0 <= first_size <= second_size or not _all_hashes(first_root, second_root, *proof):
        return False
    if first_size == second_size:
        return not proof and first_root == second_root
    if first_size == 0:
        return not proof and first_root == _EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if first_size & (first_size - 1) == 0:
        # The first tree is a complete subtree: its root is the proof's implicit first node.
        path.insert(0, first_root)
    fn, sn = first_size - 1, second_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root


def _split(n: int) -> int:
    """k, the largest power of two smaller than n (n >= 2), where RFC 9162 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


def _mth(hashes: Sequence[bytes], start: int, end: int) -> bytes:
    """MTH(D[start:end]) for a non-empty range, computed level by level without recursion.

    Pairing neighbours and carrying an odd last node up unchanged builds exactly the RFC's
    left-heavy tree, whose left subtrees are always complete.
    """
    level = list(hashes[start:end])
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _path(hashes: Sequence[bytes], m: int, start: int, end: int) -> list[bytes]:
    """PATH(m, D[start:end]) of RFC 9162 §2.1.3.1."""
    n = end - start
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(hashes, m, start, start + k), _mth(hashes, start + k, end)]
    return [*_path(hashes, m - k, start + k, end), _mth(hashes, start, start + k)]


def _subproof(hashes: Sequence[bytes], m: int, start: int, end: int, *, complete: bool) -> list[bytes]:
    """SUBPROOF(m, D[start:end], b) of RFC 9162 §2.1.4.1, with b as `complete`."""
    n = end - start
    if m == n:
        return [] if complete else [_mth(hashes, start, end)]
    k = _split(n)
    if m <= k:
        return [*_subproof(hashes, m, start, start + k, complete=complete), _mth(hashes, start + k, end)]
    return [*_subproof(hashes, m - k, start + k, end, complete=False), _mth(hashes, start, start + k)]


def _all_hashes(*values: bytes) -> bool:
    return all(len(value) == HASH_SIZE for value in values)


def _check_hashes(leaf_hashes: Sequence[bytes]) -> None:
    for i, value in enumerate(leaf_hashes):
        if len(value) != HASH_SIZE:
            raise ValueError(f"leaf hash {i} is {len(value)} bytes; a SHA-256 hash is {HASH_SIZE}")
