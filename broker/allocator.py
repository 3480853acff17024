"""The C heap of a serving process: at most `ARENAS` glibc malloc arenas.

glibc gives a thread that starts allocating an arena of its own while there are fewer than eight per
core (16 on a 2-core machine). A server's threads (the event loop, the request threads, FastAPI's
thread pool, the group committer, the background jobs) then spread the C allocations of SQLite,
psycopg, OpenSSL and Python's larger objects over many heaps. Memory freed in an arena is reused only
by the threads bound to that arena, so each keeps its own free space, and the resident memory grows
with every arena a busy thread touched: the heap fragments, nothing leaks.

Measured with `bench/soak.py` on SQLite (300 s, 8 clients, issue 17): the bytes malloc had in use
stayed at 42-46 MiB while the free bytes its arenas held grew from 10 to 59 MiB, and the server's
RSS from 201 to 231 MiB after the first minute (+15 %, still rising). With at most two arenas the
free bytes stayed at 9-16 MiB and RSS went from 181 to 192 MiB (+6 %), with no loss of throughput
(89 and 102 requests/s, noisy): Python runs one thread at a time, so threads seldom wait for an
arena's lock.

`limit_arenas` applies the limit to this process (glibc's `mallopt(M_ARENA_MAX)`, which bounds the
arenas made from then on) and exports `MALLOC_ARENA_MAX`, so worker processes it starts have the
limit from their first allocation. An operator's own `MALLOC_ARENA_MAX` is left alone. On another C
library (musl, macOS) there is nothing to do.
"""

from __future__ import annotations

import ctypes
import os
import platform
from collections.abc import MutableMapping

ARENAS = 2
ENVIRONMENT_VARIABLE = "MALLOC_ARENA_MAX"
_M_ARENA_MAX = -8  # <malloc.h>


def limit_arenas(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Limit glibc to `ARENAS` malloc arenas in this process and in the processes it starts, unless
    `environ` already sets MALLOC_ARENA_MAX or the C library is not glibc; returns whether it did."""
    if ENVIRONMENT_VARIABLE in environ or platform.libc_ver()[0] != "glibc":
        return False
    environ[ENVIRONMENT_VARIABLE] = str(ARENAS)
    libc = ctypes.CDLL(None)  # the C library this interpreter runs on
    return bool(libc.mallopt(_M_ARENA_MAX, ARENAS))
