"""Files and directories only their owner can read: the data directory, key directories, the SQLite
database. They hold password hashes, wrapped data keys and key-encryption keys, so no other local
user may read them, whatever the process umask says.

Directories we create are 0700 (each missing parent too: `mkdir(parents=True)` would leave those to
the umask); files are created 0600. An existing file of ours that is readable by others (a database
made before this rule) loses its group and other bits; existing directories are left as they are
(the operator may have chosen them).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["private_directory", "private_file", "tighten"]


def private_directory(path: Path) -> None:
    """Create `path` and any missing parent, each mode 0700."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            continue  # made meanwhile by another process: theirs, made by the same rule
        directory.chmod(0o700)  # mkdir's mode is masked by the umask; this one is exact


def private_file(path: Path) -> None:
    """Make sure `path` exists as a file only its owner can read or write (0600)."""
    private_directory(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        path.chmod(0o600)
    except FileExistsError:
        tighten(path)


def tighten(path: Path) -> None:
    """Take group and other permissions off an existing file of ours; a missing one is fine."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    if info.st_uid == os.geteuid() and info.st_mode & 0o077:
        path.chmod(info.st_mode & 0o700)
