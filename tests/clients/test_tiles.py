"""C2SP tlog-tiles arithmetic (clients.auditor.tlog.tiles) against the in-memory Merkle functions."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clients.auditor.tlog import (
    MAX_ENTRY_SIZE,
    TILE_WIDTH,
    Tile,
    TileError,
    decode_bundle,
    encode_bundle,
    format_index,
    leaf_hash,
    parse_tile_path,
    root_hash,
    split_hashes,
    tile_root,
    tile_width,
)
from clients.auditor.tlog.tiles import bundle_leaf_hashes, parse_index, subtree_hash


@pytest.mark.parametrize(
    ("index", "text"),
    [
        (0, "000"),
        (7, "007"),
        (999, "999"),
        (1000, "x001/000"),
        (67, "067"),
        (1234067, "x001/x234/067"),
        (2**64 - 1, "x018/x446/x744/x073/x709/x551/615"),
    ],
)
def test_indices_are_written_in_groups_of_three_digits(index: int, text: str) -> None:
    assert format_index(index) == text
    assert parse_index(text) == (index, TILE_WIDTH)


@pytest.mark.parametrize(
    ("path", "tile"),
    [
        ("tile/0/000", Tile(0, 0)),
        ("tile/1/x001/x234/067.p/8", Tile(1, 1234067, 8)),
        ("tile/entries/x001/000.p/255", Tile(None, 1000, 255)),
        ("tile/63/001", Tile(63, 1)),
    ],
)
def test_tile_paths_round_trip(path: str, tile: Tile) -> None:
    assert parse_tile_path(path) == tile
    assert tile.path() == path


@pytest.mark.parametrize(
    "path",
    ["tile/0/1", "tile/0/0001", "tile/0/x000/001", "tile/0/001/x002", "tile/0/000.p/0", "tile/0/000.p/256",
     "tile/0/000.p/007", "tile/64/000", "tile/01/000", "tile/-1/000", "tile/a/000", "tile/0/", "tile/0/00a",
     "tile/0/x18446744073709551616", "tile/entries/000.p/"],
)  # fmt: skip
def test_malformed_paths_are_refused(path: str) -> None:
    with pytest.raises(TileError):
        parse_tile_path(path)


def test_widths_follow_the_tree_size() -> None:
    assert tile_width(0, 0, 0) == 0
    assert tile_width(0, 0, 255) == 255
    assert tile_width(0, 0, 1000) == 256
    assert tile_width(0, 3, 1000) == 1000 - 768
    assert tile_width(0, 4, 1000) == 0
    assert tile_width(None, 3, 1000) == 232
    assert tile_width(1, 0, 256 * 256 + 1) == 256
    assert tile_width(1, 2, 256 * 256 * 2 + 511) == 1
    assert tile_width(2, 0, 256**3 - 1) == 255
    assert tile_width(3, 0, 256**3 - 1) == 0


def test_bundles_round_trip_and_refuse_what_does_not_fit() -> None:
    entries = [b"", b"a", bytes(300), bytes(MAX_ENTRY_SIZE)]
    bundle = encode_bundle(entries)
    assert bundle[:2] == b"\x00\x00" and bundle[2:4] == b"\x00\x01"
    assert decode_bundle(bundle, 4) == entries
    with pytest.raises(TileError, match="not 3"):
        decode_bundle(bundle, 3)
    with pytest.raises(TileError, match="cut short"):
        decode_bundle(bundle[:-1], 4)
    with pytest.raises(TileError, match="cut short"):
        decode_bundle(b"\x00", 1)
    with pytest.raises(TileError, match="65,535"):
        encode_bundle([bytes(MAX_ENTRY_SIZE + 1)])


def test_hash_tiles_must_be_whole_hashes() -> None:
    assert split_hashes(bytes(64), 2) == [bytes(32), bytes(32)]
    with pytest.raises(TileError):
        split_hashes(bytes(63), 2)


def tiles_of(leaves: list[bytes]) -> dict[tuple[int, int], list[bytes]]:
    """Every hash tile (full or partial) of the tree of `leaves`, from the in-memory functions."""
    tiles: dict[tuple[int, int], list[bytes]] = {}
    level, row = 0, leaves
    while row:
        for index in range(0, len(row), TILE_WIDTH):
            tiles[level, index // TILE_WIDTH] = row[index : index + TILE_WIDTH]
        row = [subtree_hash(row[i : i + TILE_WIDTH]) for i in range(0, len(row) - TILE_WIDTH + 1, TILE_WIDTH)]
        level += 1
    return tiles


@pytest.mark.parametrize("size", [0, 1, 2, 3, 255, 256, 257, 511, 512, 1000, 65535, 65536, 65537, 70001])
def test_the_tiles_of_a_tree_rebuild_its_root(size: int) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    tiles = tiles_of(leaves)
    asked: list[tuple[int, int, int]] = []

    def read(level: int, index: int, width: int) -> list[bytes]:
        asked.append((level, index, width))
        return tiles[level, index][:width]

    assert tile_root(size, read) == root_hash(leaves)
    assert len(asked) == len(set(asked)) <= 2 * (size.bit_length() // 8 + 1)


def test_random_sizes_rebuild_their_root_and_a_changed_hash_does_not() -> None:
    rng = random.Random(17)
    leaves = [rng.randbytes(32) for _ in range(3000)]
    tiles = tiles_of(leaves)
    for size in rng.sample(range(1, 3000), 40):
        assert tile_root(size, lambda lv, ix, w: tiles[lv, ix][:w]) == root_hash(leaves[:size])

        def tampered(level: int, index: int, width: int) -> list[bytes]:
            hashes = list(tiles[level, index][:width])
            hashes[-1] = bytes(32)
            return hashes

        assert tile_root(size, tampered) != root_hash(leaves[:size])


def test_a_tile_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(TileError):
        tile_root(300, lambda level, index, width: [bytes(32)] * (width - 1))


def test_leaf_hashes_straight_from_a_bundle_equal_decoding_then_hashing() -> None:
    rng = random.Random(3)
    entries = [rng.randbytes(rng.choice([0, 1, 255, 256, 400, 70_000 % MAX_ENTRY_SIZE])) for _ in range(256)]
    bundle = encode_bundle(entries)
    assert bundle_leaf_hashes(bundle, 256) == [leaf_hash(entry) for entry in entries]
    assert bundle == encode_bundle(entries)  # the caller's bytes are left alone
    for cut, width in ((bundle[:-1], 256), (bundle[:1], 1), (bundle, 255)):
        with pytest.raises(TileError):
            bundle_leaf_hashes(cut, width)


@given(
    level=st.none() | st.integers(0, 63),
    index=st.integers(0, 2**64 - 1),
    width=st.integers(1, TILE_WIDTH),
)
def test_every_tile_path_parses_back_to_its_tile(level: int | None, index: int, width: int) -> None:
    tile = Tile(level, index, width)
    assert parse_tile_path(tile.path()) == tile


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 70_000), seed=st.integers(0, 2**32))
def test_the_tiles_of_any_size_rebuild_its_root(size: int, seed: int) -> None:
    rng = random.Random(seed)
    leaves = [rng.randbytes(32) for _ in range(size)]
    tiles = tiles_of(leaves)
    assert tile_root(size, lambda level, index, width: tiles[level, index][:width]) == root_hash(leaves)
