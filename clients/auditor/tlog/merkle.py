"""Merkle tree hashing and proofs of RFC 9162 (Certificate Transparency v2), §2.1, with SHA-256.

- `leaf_hash` and `node_hash` are the domain-separated hashes of §2.1.1; `root_hash` is the MTH.
- RFC 9162's tree is left-heavy: a left subtree is always the largest complete one (2^k leaves). So a
  range of leaves whose start is aligned to its size splits into complete subtrees (`subtrees`), and
  its MTH folds from their hashes (`range_root`); a proof is the MTHs of a few such ranges
  (`inclusion_spans`, `consistency_spans`). That arithmetic is all a store of complete-subtree hashes
  (the server's) needs to answer roots and proofs in O(log n) reads.
- `StreamingTree` is the compact range of a log read left to right: one hash per set bit of its size,
  enough to append and to give the root; it names every complete subtree an append completes.
- `inclusion_proof` (§2.1.3.1 PATH) and `consistency_proof` (§2.1.4.1 PROOF) generate proofs from a
  list of leaf hashes; they raise `ValueError` on arguments that name no proof.
- `verify_inclusion` (§2.1.3.2) and `verify_consistency` (§2.1.4.2) answer True or False and never
  raise: malformed input (an index outside the tree, sizes out of order, a hash that is not 32 bytes)
  is simply a proof that does not verify.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Span",
    "StreamingTree",
    "Subtree",
    "SubtreeSink",
    "consistency_proof",
    "consistency_spans",
    "inclusion_proof",
    "inclusion_spans",
    "leaf_hash",
    "node_hash",
    "range_root",
    "root_hash",
    "subtrees",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

Span = tuple[int, int]  # the leaves [start, end)
Subtree = tuple[
    int, int
]  # a complete subtree (level, position): leaves [position·2^level, (position+1)·2^level)
SubtreeSink = Callable[[int, int, list[bytes]], None]  # (level, position of the first, their hashes)


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
    tree = StreamingTree()
    tree.extend_hashes(leaf_hashes)
    return tree.root()


# Complete subtrees


def subtrees(start: int, end: int) -> list[Subtree]:
    """Split the leaves [start, end) into complete subtrees, left to right, each as large as alignment
    allows: O(log n) of them. For [0, n), one per set bit of n, the largest first."""
    parts: list[Subtree] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        parts.append((level, start >> level))
        start += 1 << level
    return parts


def range_root(hashes: Sequence[bytes]) -> bytes:
    """The MTH of a range from the hashes of its `subtrees`, left to right; the range must be a
    subtree of RFC 9162's tree (its start aligned to its size, as every proof's ranges are, and [0, n))."""
    if not hashes:
        return EMPTY_ROOT
    digest = hashes[-1]
    for left in reversed(hashes[:-1]):  # a left subtree is the larger, complete one: fold from the right
        digest = node_hash(left, digest)
    return digest


class StreamingTree:
    """The RFC 9162 Merkle tree of a log read left to right, kept as its compact range.

    A tree of n leaves splits into one complete subtree per set bit of n, largest first; their roots
    (`O(log n)` hashes) are all that later leaves and the tree's root need.
    """

    __slots__ = ("_edge", "_size")

    def __init__(self, size: int = 0, edge: Sequence[bytes] = ()) -> None:
        """The tree of `size` leaves whose `subtrees(0, size)` hash to `edge` (the largest first): a
        log resumed where it stood. Raises `ValueError` unless `edge` is one hash per set bit of `size`."""
        if size < 0 or len(edge) != size.bit_count():
            raise ValueError(
                f"a tree of {size} leaves has one edge hash per set bit of its size, not {len(edge)}"
            )
        _check_hashes(edge, "edge hash")
        self._edge: list[bytes] = list(edge)  # roots of the complete subtrees, the largest (leftmost) first
        self._size = size

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    def extend(self, entries: Sequence[bytes]) -> None:
        """Append `entries` as the next leaves, hashing each as SHA-256(0x00 ‖ entry)."""
        sha256 = hashlib.sha256  # the auditor hashes millions of entries: one lookup, no call per leaf
        self._extend([sha256(_LEAF_PREFIX + entry).digest() for entry in entries], None)

    def extend_hashes(self, leaf_hashes: Sequence[bytes], on_subtrees: SubtreeSink | None = None) -> None:
        """Append leaves that hash to `leaf_hashes`. `on_subtrees(level, position, hashes)` is called,
        level by level from the leaves up, with the complete subtrees the new leaves complete, which
        sit at `position`, `position + 1`, …; level 0 is the leaves themselves."""
        _check_hashes(leaf_hashes)
        self._extend(list(leaf_hashes), on_subtrees)

    def root(self) -> bytes:
        """The Merkle Tree Hash of the leaves so far; SHA-256 of nothing for the empty tree."""
        return range_root(self._edge)

    def _extend(self, level: list[bytes], on_subtrees: SubtreeSink | None) -> None:
        # Level by level, one list comprehension each: far fewer Python steps per leaf than pushing
        # leaves one at a time. `level[0]` sits at position `position` of level `height`.
        sha256, edge = hashlib.sha256, self._edge
        count, position, height = len(level), self._size, 0
        pending: list[bytes] = []  # the new last node of each level without its right sibling yet
        while level:
            if on_subtrees is not None:
                on_subtrees(height, position, list(level))
            first = None
            if position & 1:  # level[0] is a right child: its left sibling is the edge's last root
                first = sha256(_NODE_PREFIX + edge.pop() + level[0]).digest()
                del level[0]
            if len(level) & 1:
                pending.append(level.pop())
            pairs = zip(level[0::2], level[1::2], strict=True)
            parents = [sha256(_NODE_PREFIX + left + right).digest() for left, right in pairs]
            if first is not None:
                parents.insert(0, first)
            level, position, height = parents, position >> 1, height + 1
        edge.extend(reversed(pending))
        self._size += count


# Proofs


def inclusion_spans(index: int, tree_size: int) -> list[Span]:
    """The leaf ranges whose MTHs make PATH(index, D[tree_size]) (RFC 9162 §2.1.3.1), from the leaf up.

    Raises `ValueError` unless 0 <= index < tree_size.
    """
    if not 0 <= index < tree_size:
        raise ValueError(f"leaf index {index} is outside a tree of size {tree_size}")
    siblings: list[Span] = []
    start, end = 0, tree_size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            siblings.append((start + k, end))
            end = start + k
        else:
            siblings.append((start, start + k))
            start += k
    return siblings[::-1]


def consistency_spans(first_size: int, second_size: int) -> list[Span]:
    """The leaf ranges whose MTHs make PROOF(first_size, D[second_size]) (RFC 9162 §2.1.4.1).

    None when `first_size` is 0 or `second_size` (every tree extends the empty tree and itself).
    Raises `ValueError` unless 0 <= first_size <= second_size.
    """
    if not 0 <= first_size <= second_size:
        raise ValueError(f"first size {first_size} is outside 0..{second_size}")
    if first_size in (0, second_size):
        return []
    spans: list[Span] = []  # SUBPROOF(m, D[start:end], b), unrolled: siblings from the top down
    m, start, end, complete = first_size, 0, second_size, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            spans.append((start + k, end))
            end = start + k
        else:
            spans.append((start, start + k))
            start, m, complete = start + k, m - k, False
    if not complete:
        spans.append((start, end))  # the old tree's own subtree, which the verifier cannot know
    return spans[::-1]


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """The inclusion proof PATH(index, D[n]) of RFC 9162 §2.1.3.1, from the leaf up to the root.

    Raises `ValueError` unless 0 <= index < len(leaf_hashes) and every leaf hash is 32 bytes.
    """
    _check_hashes(leaf_hashes)
    return [root_hash(leaf_hashes[start:end]) for start, end in inclusion_spans(index, len(leaf_hashes))]


def consistency_proof(leaf_hashes: Sequence[bytes], first_size: int) -> list[bytes]:
    """The consistency proof PROOF(first_size, D[n]) of RFC 9162 §2.1.4.1.

    The proof is empty when `first_size` is 0 or n (every tree extends the empty tree and itself).
    Raises `ValueError` unless 0 <= first_size <= len(leaf_hashes) and every leaf hash is 32 bytes.
    """
    _check_hashes(leaf_hashes)
    spans = consistency_spans(first_size, len(leaf_hashes))
    return [root_hash(leaf_hashes[start:end]) for start, end in spans]


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
        return not proof and first_root == EMPTY_ROOT
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


def _all_hashes(*values: bytes) -> bool:
    return all(len(value) == HASH_SIZE for value in values)


def _check_hashes(hashes: Sequence[bytes], what: str = "leaf hash") -> None:
    for i, value in enumerate(hashes):
        if len(value) != HASH_SIZE:
            raise ValueError(f"{what} {i} is {len(value)} bytes; a SHA-256 hash is {HASH_SIZE}")
