"""RFC 9162 §2.1 Merkle hashing and proofs: known vectors, properties, and tampering.

The known vectors are the RFC 6962/9162 test data of transparency-dev/merkle
(testonly/constants.go, proof/verify_test.go), in tests/vectors/merkle.json, which the server's tree
runs too (tests/broker/audit/test_vectors.py). Properties compare the RFC's iterative verifiers
with an independent oracle: the recursive definitions of PATH and SUBPROOF, replayed backwards.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.vectors import load

from clients.auditor.tlog import (
    StreamingTree,
    consistency_proof,
    consistency_spans,
    inclusion_proof,
    inclusion_spans,
    leaf_hash,
    node_hash,
    range_root,
    root_hash,
    subtrees,
    verify_consistency,
    verify_inclusion,
)

MERKLE = load("merkle")
ENTRIES = [bytes.fromhex(entry) for entry in MERKLE["entries"]]
LEAVES = [leaf_hash(entry) for entry in ENTRIES]
ROOTS = [bytes.fromhex(root) for root in MERKLE["roots"]]  # of the first n entries, n = 0..8
EMPTY_ROOT = hashlib.sha256(b"").digest()
INCLUSION_VECTORS = [(v["index"], v["tree_size"], v["proof"]) for v in MERKLE["inclusion"]]
CONSISTENCY_VECTORS = [(v["first"], v["second"], v["proof"]) for v in MERKLE["consistency"]]
OTHER_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def _hashes(hexes: Sequence[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in hexes]


def _flip(value: bytes, position: int) -> bytes:
    return value[:position] + bytes([value[position] ^ 0x01]) + value[position + 1 :]


def _tree(size: int, seed: bytes = b"") -> list[bytes]:
    """Distinct leaves: equal leaves would make some reorderings legitimately verify."""
    return [leaf_hash(seed + i.to_bytes(2, "big")) for i in range(size)]


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _oracle_mth(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) by its recursive definition (RFC 9162 §2.1.1)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(_oracle_mth(leaves[:k]), _oracle_mth(leaves[k:]))


def _oracle_path_spans(m: int, start: int, end: int) -> list[tuple[int, int]]:
    """The ranges of PATH(m, D[start:end]) by the recursive definition (RFC 9162 §2.1.3.1)."""
    if end - start == 1:
        return []
    k = _split(end - start)
    if m < k:
        return [*_oracle_path_spans(m, start, start + k), (start + k, end)]
    return [*_oracle_path_spans(m - k, start + k, end), (start, start + k)]


def _oracle_subproof_spans(m: int, start: int, end: int, complete: bool) -> list[tuple[int, int]]:
    """The ranges of SUBPROOF(m, D[start:end], b) by the recursive definition (RFC 9162 §2.1.4.1)."""
    if m == end - start:
        return [] if complete else [(start, end)]
    k = _split(end - start)
    if m <= k:
        return [*_oracle_subproof_spans(m, start, start + k, complete), (start + k, end)]
    return [*_oracle_subproof_spans(m - k, start + k, end, False), (start, start + k)]


def _oracle_inclusion_root(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes | None:
    """The root PATH(index, D[size]) leads to, by the recursive definition (RFC 9162 §2.1.3.1)."""
    if size == 1:
        return None if proof else leaf
    if not proof:
        return None
    k = _split(size)
    *rest, last = proof
    if index < k:
        inner = _oracle_inclusion_root(index, k, leaf, rest)
        return None if inner is None else node_hash(inner, last)
    inner = _oracle_inclusion_root(index - k, size - k, leaf, rest)
    return None if inner is None else node_hash(last, inner)


def _oracle_consistency_roots(
    m: int, n: int, proof: Sequence[bytes], first_root: bytes, complete: bool = True
) -> tuple[bytes, bytes] | None:
    """The (old, new) roots SUBPROOF(m, D[n], complete) leads to (RFC 9162 §2.1.4.1)."""
    if m == n:
        if complete:
            return None if proof else (first_root, first_root)
        return (proof[0], proof[0]) if len(proof) == 1 else None
    if not proof:
        return None
    k = _split(n)
    *rest, last = proof
    if m <= k:
        inner = _oracle_consistency_roots(m, k, rest, first_root, complete)
        return None if inner is None else (inner[0], node_hash(inner[1], last))
    inner = _oracle_consistency_roots(m - k, n - k, rest, first_root, False)
    return None if inner is None else (node_hash(last, inner[0]), node_hash(last, inner[1]))


def _oracle_consistent(m: int, n: int, first: bytes, second: bytes, proof: Sequence[bytes]) -> bool:
    if not 0 < m < n:
        return False
    return _oracle_consistency_roots(m, n, proof, first) == (first, second)


def test_hashes_are_domain_separated_sha256() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()


@pytest.mark.parametrize("size", range(9))
def test_root_hash_matches_known_roots(size: int) -> None:
    assert root_hash(LEAVES[:size]) == ROOTS[size]


def test_empty_tree_hashes_to_sha256_of_nothing() -> None:
    assert root_hash([]) == EMPTY_ROOT


@pytest.mark.parametrize(("index", "size", "hexes"), INCLUSION_VECTORS)
def test_inclusion_proof_matches_known_vector(index: int, size: int, hexes: list[str]) -> None:
    proof = _hashes(hexes)
    assert inclusion_proof(LEAVES[:size], index) == proof
    assert verify_inclusion(LEAVES[index], index, size, proof, ROOTS[size])


@pytest.mark.parametrize(("first", "second", "hexes"), CONSISTENCY_VECTORS)
def test_consistency_proof_matches_known_vector(first: int, second: int, hexes: list[str]) -> None:
    proof = _hashes(hexes)
    assert consistency_proof(LEAVES[:second], first) == proof
    assert verify_consistency(first, second, ROOTS[first], ROOTS[second], proof)


@pytest.mark.parametrize("size", range(1, 9))
def test_every_small_inclusion_proof_verifies_and_its_corruptions_do_not(size: int) -> None:
    root = ROOTS[size]
    for index in range(size):
        proof = inclusion_proof(LEAVES[:size], index)
        leaf = LEAVES[index]
        assert verify_inclusion(leaf, index, size, proof, root)
        probes = [
            (leaf, index - 1, size, proof, root),
            (leaf, index + 1, size, proof, root),
            (leaf, index ^ 2, size, proof, root),
            (leaf, index, size * 2, proof, root),
            (leaf, index, size // 2, proof, root),
            (OTHER_HASH, index, size, proof, root),
            (leaf, index, size, proof, EMPTY_ROOT),
            (leaf, index, size, proof, OTHER_HASH),
            (leaf, index, size, [*proof, b""], root),
            (leaf, index, size, [*proof, root], root),
            (leaf, index, size, [b"", *proof], root),
            (leaf, index, size, [root, *proof], root),
            (leaf, index, size, proof[:-1], root) if proof else (leaf, index, size, [root], root),
        ]
        probes += [
            (leaf, index, size, [*proof[:i], _flip(p, 0), *proof[i + 1 :]], root) for i, p in enumerate(proof)
        ]
        assert not any(verify_inclusion(*probe) for probe in probes), (index, size)


@pytest.mark.parametrize("second", range(1, 9))
def test_every_small_consistency_proof_verifies_and_its_corruptions_do_not(second: int) -> None:
    for first in range(1, second):
        proof = consistency_proof(LEAVES[:second], first)
        r1, r2 = ROOTS[first], ROOTS[second]
        assert verify_consistency(first, second, r1, r2, proof)
        probes = [
            (first - 1, second, r1, r2, proof),
            (first + 1, second, r1, r2, proof),
            (first ^ 2, second, r1, r2, proof),
            (first, second * 2, r1, r2, proof),
            (first, second // 2, r1, r2, proof),
            (first, second, OTHER_HASH, r2, proof),
            (first, second, r1, OTHER_HASH, proof),
            (first, second, r2, r1, proof),
            (first, second, r1, r2, []),
            (first, second, r1, r2, [*proof, r1]),
            (first, second, r1, r2, [*proof, r2]),
            (first, second, r1, r2, [r1, *proof]),
            (first, second, r1, r2, [proof[0], *proof]),
            (first, second, r1, r2, proof[:-1]),
        ]
        probes += [
            (first, second, r1, r2, [*proof[:i], _flip(p, 0), *proof[i + 1 :]]) for i, p in enumerate(proof)
        ]
        assert not any(verify_consistency(*probe) for probe in probes), (first, second)


def test_trivial_consistency_needs_an_empty_proof_and_matching_roots() -> None:
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(0, 5, EMPTY_ROOT, ROOTS[5], [])
    assert verify_consistency(3, 3, ROOTS[3], ROOTS[3], [])
    assert not verify_consistency(3, 3, ROOTS[3], ROOTS[4], [])
    assert not verify_consistency(3, 3, ROOTS[3], ROOTS[3], [EMPTY_ROOT])
    assert not verify_consistency(0, 5, EMPTY_ROOT, ROOTS[5], [EMPTY_ROOT])
    assert not verify_consistency(0, 5, OTHER_HASH, ROOTS[5], [])  # not the empty tree's hash
    assert not verify_consistency(2, 1, ROOTS[2], ROOTS[1], [])  # time travel


@pytest.mark.parametrize(
    ("leaf", "index", "size", "root"),
    [
        (LEAVES[0], 0, 0, ROOTS[0]),
        (LEAVES[0], 1, 1, ROOTS[1]),
        (LEAVES[0], -1, 1, ROOTS[1]),
        (LEAVES[0][:31], 0, 1, LEAVES[0][:31]),
        (LEAVES[0] + b"\x00", 0, 1, LEAVES[0] + b"\x00"),
        (LEAVES[0], 0, 1, b""),
    ],
)
def test_inclusion_with_invalid_arguments_is_false(leaf: bytes, index: int, size: int, root: bytes) -> None:
    assert not verify_inclusion(leaf, index, size, [], root)


def test_proof_hashes_of_the_wrong_length_do_not_verify() -> None:
    proof = inclusion_proof(LEAVES[:2], 0)
    assert not verify_inclusion(LEAVES[0], 0, 2, [proof[0] + b"\x00"], ROOTS[2])
    proof = consistency_proof(LEAVES[:3], 2)
    assert not verify_consistency(2, 3, ROOTS[2], ROOTS[3], [proof[0][:31]])


def test_generators_refuse_arguments_that_name_no_proof() -> None:
    with pytest.raises(ValueError, match="outside a tree of size 3"):
        inclusion_proof(LEAVES[:3], 3)
    with pytest.raises(ValueError, match="outside"):
        inclusion_proof(LEAVES[:3], -1)
    with pytest.raises(ValueError, match="outside"):
        inclusion_proof([], 0)
    with pytest.raises(ValueError, match="first size 4"):
        consistency_proof(LEAVES[:3], 4)
    with pytest.raises(ValueError, match="first size -1"):
        consistency_proof(LEAVES[:3], -1)
    with pytest.raises(ValueError, match="leaf hash 1 is 3 bytes"):
        root_hash([LEAVES[0], b"abc"])
    with pytest.raises(ValueError, match="32"):
        inclusion_proof([b"short"], 0)
    with pytest.raises(ValueError, match="32"):
        consistency_proof([b"short"], 1)


def test_trivial_consistency_proofs_are_empty() -> None:
    assert consistency_proof(LEAVES, 0) == []
    assert consistency_proof(LEAVES, len(LEAVES)) == []


@settings(max_examples=25, deadline=None)
@given(size=st.integers(1, 200), seed=st.binary(max_size=4))
def test_every_inclusion_proof_verifies_against_the_root(size: int, seed: bytes) -> None:
    leaves = _tree(size, seed)
    root = root_hash(leaves)
    for index, leaf in enumerate(leaves):
        assert verify_inclusion(leaf, index, size, inclusion_proof(leaves, index), root)


@settings(max_examples=150, deadline=None)
@given(size=st.integers(1, 200), data=st.data())
def test_a_changed_inclusion_proof_root_or_leaf_does_not_verify(size: int, data: st.DataObject) -> None:
    leaves = _tree(size)
    root = root_hash(leaves)
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = inclusion_proof(leaves, index)
    leaf = leaves[index]
    position = data.draw(st.integers(0, 31), label="byte")
    assert not verify_inclusion(_flip(leaf, position), index, size, proof, root)
    assert not verify_inclusion(leaf, index, size, proof, _flip(root, position))
    for i, node in enumerate(proof):
        assert not verify_inclusion(
            leaf, index, size, [*proof[:i], _flip(node, position), *proof[i + 1 :]], root
        )
    # Another index: the leaf sits elsewhere, so the proof climbs the wrong way.
    other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index), label="other") if size > 1 else 1
    assert not verify_inclusion(leaf, other, size, proof, root)
    # Another size: a size with the same climbing shape verifies (the checkpoint binds the size to
    # the root), every other one must not; the recursive PATH definition is the oracle.
    for other_size in {size - 1, size + 1, size * 2, size // 2, data.draw(st.integers(0, 400), label="size")}:
        expected = index < other_size and _oracle_inclusion_root(index, other_size, leaf, proof) == root
        assert verify_inclusion(leaf, index, other_size, proof, root) == expected, other_size
    assert not verify_inclusion(leaf, index, size * 2, proof, root)


@settings(max_examples=150, deadline=None)
@given(second=st.integers(1, 200), data=st.data())
def test_every_consistency_proof_verifies_and_changes_do_not(second: int, data: st.DataObject) -> None:
    leaves = _tree(second)
    first = data.draw(st.integers(0, second), label="first")
    proof = consistency_proof(leaves, first)
    r1, r2 = root_hash(leaves[:first]), root_hash(leaves)
    assert verify_consistency(first, second, r1, r2, proof)
    if first in (0, second):
        assert proof == []
        return
    assert _oracle_consistent(first, second, r1, r2, proof)
    position = data.draw(st.integers(0, 31), label="byte")
    assert not verify_consistency(first, second, _flip(r1, position), r2, proof)
    assert not verify_consistency(first, second, r1, _flip(r2, position), proof)
    for i, node in enumerate(proof):
        assert not verify_consistency(
            first, second, r1, r2, [*proof[:i], _flip(node, position), *proof[i + 1 :]]
        )
    assert not verify_consistency(first, second, r1, r2, proof[:-1])
    assert not verify_consistency(first, second, r1, r2, [*proof, r2])
    for m, n in {
        (first - 1, second),
        (first + 1, second),
        (first, second - 1),
        (first, second + 1),
        (first, second * 2),
    }:
        assert verify_consistency(m, n, r1, r2, proof) == _oracle_consistent(m, n, r1, r2, proof), (m, n)


# The arithmetic a store of subtree hashes needs (the server's tree), against the RFC's recursion


@settings(max_examples=100, deadline=None)
@given(size=st.integers(1, 5000), data=st.data())
def test_proof_spans_are_the_ranges_of_the_recursive_definitions(size: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, size - 1), label="index")
    assert inclusion_spans(index, size) == _oracle_path_spans(index, 0, size)
    first = data.draw(st.integers(1, size), label="first")
    expected = [] if first == size else _oracle_subproof_spans(first, 0, size, True)
    assert consistency_spans(first, size) == expected
    assert consistency_spans(0, size) == []


def test_span_functions_refuse_arguments_that_name_no_proof() -> None:
    for index, size in ((3, 3), (-1, 3), (0, 0)):
        with pytest.raises(ValueError, match=f"leaf index {index} is outside a tree of size {size}"):
            inclusion_spans(index, size)
    for first, second in ((4, 3), (-1, 3)):
        with pytest.raises(ValueError, match=f"first size {first} is outside 0..{second}"):
            consistency_spans(first, second)


@settings(max_examples=200, deadline=None)
@given(start=st.integers(0, 2**40), length=st.integers(0, 2**40))
def test_subtrees_cover_a_range_with_aligned_complete_subtrees(start: int, length: int) -> None:
    parts = subtrees(start, start + length)
    covered = start
    for level, position in parts:
        assert position << level == covered  # each one starts where the last ended, aligned to its size
        covered += 1 << level
    assert covered == start + length
    assert len(parts) <= 2 * max(length, 1).bit_length()
    assert subtrees(0, length) == [  # [0, n): one per set bit of n, the largest first
        (level, (length >> (level + 1)) << 1)
        for level in reversed(range(length.bit_length()))
        if length >> level & 1
    ]


@pytest.mark.parametrize("size", range(9))
def test_a_range_root_folds_the_known_root_from_its_subtrees(size: int) -> None:
    parts = [LEAVES[p << level : (p + 1) << level] for level, p in subtrees(0, size)]
    assert range_root([root_hash(part) for part in parts]) == ROOTS[size]


# The streaming tree (the compact range)


@settings(max_examples=200, deadline=None)
@given(size=st.integers(0, 300), data=st.data())
def test_streaming_root_equals_the_rfc_root_however_the_log_is_paged(size: int, data: st.DataObject) -> None:
    entries = [i.to_bytes(2, "big") * (i % 3) for i in range(size)]
    tree, start = StreamingTree(), 0
    while start < size:
        stop = data.draw(st.integers(start + 1, size), label="page end")
        tree.extend(entries[start:stop])
        start = stop
    assert tree.size == size
    assert (
        tree.root()
        == _oracle_mth([leaf_hash(entry) for entry in entries])
        == root_hash([leaf_hash(entry) for entry in entries])
    )


def test_the_streaming_tree_keeps_one_hash_per_set_bit_of_its_size() -> None:
    tree = StreamingTree()
    for size in range(1, 1100):
        tree.extend([b"x"])
        assert len(tree._edge) == size.bit_count()


def test_appending_nothing_changes_nothing() -> None:
    tree = StreamingTree()
    tree.extend([])
    assert tree.root() == root_hash([])
    tree.extend([b"a", b"b", b"c"])
    root = tree.root()
    tree.extend([])
    assert (tree.size, tree.root()) == (3, root)


@settings(max_examples=100, deadline=None)
@given(start=st.integers(0, 200), batches=st.lists(st.integers(0, 70), max_size=4))
def test_a_resumed_tree_names_each_subtree_its_appends_complete_once(start: int, batches: list[int]) -> None:
    leaves = _tree(start + sum(batches))
    edge = [root_hash(leaves[p << level : (p + 1) << level]) for level, p in subtrees(0, start)]
    tree = StreamingTree(start, edge)
    named: list[tuple[int, int, bytes]] = []

    def sink(level: int, position: int, hashes: list[bytes]) -> None:
        named.extend((level, position + i, digest) for i, digest in enumerate(hashes))

    size = start
    for count in batches:
        tree.extend_hashes(leaves[size : size + count], on_subtrees=sink)
        size += count
        assert (tree.size, tree.root()) == (size, _oracle_mth(leaves[:size]))
    completed = {  # every complete subtree of [0, size) that was not complete in [0, start)
        (level, p)
        for level in range(size.bit_length())
        for p in range(size >> level)
        if (p + 1) << level > start
    }
    assert sorted((level, p) for level, p, _ in named) == sorted(completed)
    for level, p, digest in named:
        assert digest == _oracle_mth(leaves[p << level : (p + 1) << level]), (level, p)


@pytest.mark.parametrize(
    ("size", "edge", "message"),
    [
        (3, [LEAVES[0]], "one edge hash per set bit of its size, not 1"),
        (2, [LEAVES[0], LEAVES[1]], "not 2"),
        (-1, [], "a tree of -1 leaves"),
        (1, [b"short"], "edge hash 0 is 5 bytes"),
    ],
)
def test_a_tree_resumes_only_from_its_compact_range(size: int, edge: list[bytes], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StreamingTree(size, edge)
    with pytest.raises(ValueError, match="leaf hash 1 is 3 bytes"):
        StreamingTree().extend_hashes([LEAVES[0], b"abc"])
