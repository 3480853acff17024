"""Download a log's entries for `verify`: C2SP tlog-tiles entry bundles, or the JSON pages.

`Download(client, size, fetch_ahead, hashed=...)` iterates (index of the first entry, entries), or
their RFC 9162 leaf hashes when `hashed` (what `verify` needs when nobody replays the entries), for the
log [0, size) in order. It asks for entry bundles (c2sp.org/tlog-tiles), `fetch_ahead` at once so a
network's round trips overlap; when the first bundle is a 404 (a server without tiles) it reads the
JSON pages of `/v1/audit/entries` instead, and `source` says which. Whatever does not add up (a
missing bundle the checkpoint covers, a page that is not exactly the next entries) is a
`DownloadFailed`; a bundle that is not a bundle is the client's `MalformedResponse`.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Literal

from clients.auditor.api import AuditorClient, EntriesPage, HTTPProblem
from clients.auditor.tlog import TILE_WIDTH, tile_width

__all__ = ["FETCH_AHEAD", "Download", "DownloadFailed"]

FETCH_AHEAD = 4  # entry bundles requested at once: hides the round trip of each 256-entry request


class DownloadFailed(Exception):
    """The server's answers do not add up to the log its checkpoint describes."""


class Download:
    """The entries (or leaf hashes) of the log [0, size), in order; see the module doc."""

    def __init__(
        self, client: AuditorClient, size: int, fetch_ahead: int = FETCH_AHEAD, *, hashed: bool
    ) -> None:
        self.client, self.size, self.fetch_ahead, self.hashed = client, size, fetch_ahead, hashed
        self.source: Literal["tiles", "json"] = "tiles"

    def __iter__(self) -> Iterator[tuple[int, list[bytes]]]:
        client, size, hashed = self.client, self.size, self.hashed
        bundles = _entry_bundles(client, size, self.fetch_ahead, hashed=hashed)
        try:
            first = next(bundles, None)
        except HTTPProblem as exc:
            if exc.status != 404:
                raise
            self.source, sha256 = "json", hashlib.sha256
            for start, entries in _json_pages(client, size):
                yield start, [sha256(b"\x00" + entry).digest() for entry in entries] if hashed else entries
            return
        if first is not None:
            yield first
        try:
            yield from bundles
        except HTTPProblem as exc:
            if exc.status != 404:
                raise
            what = f"the server does not serve an entry bundle its checkpoint of {size} entries covers"
            raise DownloadFailed(f"{what}: {exc}") from None


def _entry_bundles(
    client: AuditorClient, size: int, fetch_ahead: int, *, hashed: bool
) -> Iterator[tuple[int, list[bytes]]]:
    """The entry bundles of [0, size), `fetch_ahead` requests in flight (httpx clients are thread-safe)."""
    count = -(-size // TILE_WIDTH)
    fetch = client.entry_bundle_leaf_hashes if hashed else client.entry_bundle
    if fetch_ahead <= 1 or count <= 1:
        for index in range(count):
            yield index * TILE_WIDTH, fetch(index, tile_width(None, index, size))
        return
    with ThreadPoolExecutor(fetch_ahead, thread_name_prefix="consentry-audit") as pool:
        pending: deque[tuple[int, Future[list[bytes]]]] = deque()
        try:
            for index in range(count):
                width = tile_width(None, index, size)
                pending.append((index, pool.submit(fetch, index, width)))
                if len(pending) >= fetch_ahead:
                    done, future = pending.popleft()
                    yield done * TILE_WIDTH, future.result()
            while pending:
                done, future = pending.popleft()
                yield done * TILE_WIDTH, future.result()
        finally:
            for _, future in pending:
                future.cancel()


def _json_pages(client: AuditorClient, size: int) -> Iterator[tuple[int, list[bytes]]]:
    start = 0
    while start < size:
        page = client.entries(start, size)
        _check_page(page, start, size)
        yield start, page.entries
        start = page.end


def _check_page(page: EntriesPage, start: int, size: int) -> None:
    """Fail unless `page` holds exactly the entries start, start + 1, … up to its end, within `size`."""
    span = f"the page of entries [{page.start}, {page.end})"
    if page.start != start or not start < page.end <= size:
        raise DownloadFailed(f"asked for entries [{start}, {size}), the server answered {span}")
    if page.tree_size < size:
        raise DownloadFailed(
            f"{span} says the log has {page.tree_size} entries, fewer than its checkpoint's {size}"
        )
    expected = range(start, page.end)
    if page.indices != list(expected):
        for position, (index, wanted) in enumerate(zip(page.indices, expected, strict=False)):
            if index != wanted:
                raise DownloadFailed(
                    f"item {position} of {span} has index {index!r}, not {wanted}: "
                    "an entry is missing, duplicated or out of order"
                )
        raise DownloadFailed(f"{span} holds {len(page.indices)} entries, not {len(expected)}")
    if page.next not in (None, page.end) or (page.next is None and page.end < size):
        raise DownloadFailed(f"{span} says the next page starts at {page.next}, not {page.end}")
