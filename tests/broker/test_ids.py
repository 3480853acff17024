"""Identifiers made without a system call: unique, unrelated, and a forked child's its own."""

from __future__ import annotations

import os

from broker.ids import unique_id


def test_ids_are_unique_and_unrelated() -> None:
    ids = [unique_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids) and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    # a keyed hash of a counter: consecutive ids share no visible structure (no common prefix)
    assert len({i[:4] for i in ids[:100]}) > 90


def test_a_forked_child_makes_ids_of_its_own() -> None:
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # the child: the same counter, and (without a new key) the parent's next id
        os.write(writer, unique_id().encode())
        os._exit(0)
    os.waitpid(child, 0)
    in_child = os.read(reader, 64).decode()
    os.close(reader)
    os.close(writer)
    assert in_child != unique_id()
