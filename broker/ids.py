"""Unique, unguessable identifiers made without a system call: request ids and access-token `jti`s.

Each is a keyed hash (BLAKE2b, 128 bits) of a per-process counter under a random per-process key:
unique within the process (the counter), across processes (their keys, 256 random bits each), and
unguessable without the key, which never leaves the process. Not `os.urandom` per identifier: that
system call gives up the interpreter lock, and under load the event loop then waits for another
thread to hand it back (and it costs a client-credentials token several µs).
"""

from __future__ import annotations

import hashlib
import itertools
import os

__all__ = ["unique_id"]

_KEY, _COUNTER = os.urandom(32), itertools.count()


def unique_id() -> str:
    """A fresh identifier: 32 lower-case hex digits (see the module docstring)."""
    return hashlib.blake2b(next(_COUNTER).to_bytes(8, "big"), key=_KEY, digest_size=16).hexdigest()


def _new_key() -> None:
    """A forked child (a server that imports the app before it forks) makes ids under its own key."""
    global _KEY
    _KEY = os.urandom(32)


os.register_at_fork(after_in_child=_new_key)
