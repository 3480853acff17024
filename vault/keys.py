"""Key-encryption-key (KEK) providers and the blind-index key, behind one small interface.

- `FileKeyProvider` (default): one file per KEK version under ``<data_dir>/keys``, created with mode
  0600 on first use. New versions are added by `add_version`; `retire` deletes a version's file.
- `EnvKeyProvider` (containers): keys come from environment variables and are read-only here;
  operators add a version to ``CONSENTRY_KEKS`` and restart, then run ``consentry keys rotate``.

A cloud KMS would be a third provider with the same methods. The active version is always the
highest one: every provider re-reads its source when asked, so a running server picks up a rotation.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import secrets
from pathlib import Path
from typing import Protocol

from vault.crypto import KEY_BYTES, generate_key
from vault.errors import KeyUnavailable, VaultError
from vault.private_files import private_directory

_KEK_FILE = re.compile(r"^kek-(\d{1,9})\.key$")


class KeyProvider(Protocol):
    """Where KEKs and the blind-index key come from."""

    def versions(self) -> list[int]:
        """Every KEK version available, ascending."""
        ...

    def kek(self, version: int) -> bytes:
        """The key material of one KEK version; raises KeyUnavailable if it is gone."""
        ...

    def add_version(self) -> int:
        """Create a new, higher KEK version and return it."""
        ...

    def retire(self, version: int) -> bool:
        """Destroy a KEK version; returns False when the provider cannot (it says so elsewhere)."""
        ...

    def blind_index_key(self) -> bytes:
        """The key for blind-index tokens (never rotated: tokens would stop matching)."""
        ...


def active_version(provider: KeyProvider) -> int:
    """The version new DEKs are wrapped under: the highest available."""
    versions = provider.versions()
    if not versions:
        raise KeyUnavailable("no key-encryption key is available")
    return versions[-1]


def _decode_key(text: str, what: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise VaultError(f"{what} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise VaultError(f"{what} must decode to {KEY_BYTES} bytes, not {len(key)}")
    return key


def create_key_file(path: Path, text: str) -> None:
    """Create `path` (mode 0600) holding `text`, all at once; FileExistsError if it already exists.

    Servers list and read key directories while `consentry keys …` adds to them from another
    process, so the file is written whole and fsynced under a hidden staging name first, then
    hard-linked into place: a reader sees no file or the whole key, never an empty or partial one.
    The link fails when the name is taken, so of two processes racing for a name only one wins.
    """
    staging = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(staging, path)
    finally:
        staging.unlink()


def _write_secret(path: Path, key: bytes) -> None:
    create_key_file(path, base64.b64encode(key).decode() + "\n")


class FileKeyProvider:
    """KEKs as files ``kek-<version>.key`` (mode 0600) in one directory (mode 0700)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        # version -> (the file's identity, its key): a KEK file is written once, whole, and never changed,
        # so a cheap stat that finds the same file stands for reading it again; a retired (deleted)
        # or replaced file fails that check, so retirement takes effect at once, as before.
        self._cache: dict[int, tuple[tuple[int, int, int], bytes]] = {}
        self._paths: dict[int, str] = {}
        private_directory(directory)
        if not self.versions():
            self.add_version()
        if not (directory / "blind-index.key").exists():
            # Another process may create it first; then we use theirs.
            with contextlib.suppress(FileExistsError):
                _write_secret(directory / "blind-index.key", generate_key())

    def versions(self) -> list[int]:
        """KEK versions on disk, ascending."""
        found = (_KEK_FILE.match(p.name) for p in self.directory.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def kek(self, version: int) -> bytes:
        """One KEK version, from its file (read again only when the file is not the one read before)."""
        path = self._paths.get(version)
        if path is None:  # built once per version: a pathlib join and its str() cost more than the stat
            path = self._paths[version] = os.path.join(self.directory, f"kek-{version}.key")
        try:
            stat = os.stat(path)
            identity = (stat.st_dev, stat.st_ino, stat.st_mtime_ns)
            cached = self._cache.get(version)
            if cached is not None and cached[0] == identity:
                return cached[1]
            key = _decode_key(Path(path).read_text(), path)
        except FileNotFoundError:
            self._cache.pop(version, None)
            raise KeyUnavailable(f"key-encryption key version {version} is not in {self.directory}") from None
        self._cache[version] = (identity, key)
        return key

    def add_version(self) -> int:
        """Write a new KEK file one version above the highest."""
        while True:
            version = (self.versions() or [0])[-1] + 1
            try:
                _write_secret(self.directory / f"kek-{version}.key", generate_key())
                return version
            except FileExistsError:
                continue

    def retire(self, version: int) -> bool:
        """Delete the KEK file: whatever it wrapped (including in old backups) is unreadable after."""
        (self.directory / f"kek-{version}.key").unlink(missing_ok=True)
        return True

    def blind_index_key(self) -> bytes:
        """Read the blind-index key file."""
        path = self.directory / "blind-index.key"
        return _decode_key(path.read_text(), str(path))


class EnvKeyProvider:
    """KEKs given as ``<version>:<base64>`` pairs, comma-separated; read-only."""

    def __init__(self, keks: str, blind_index_key: str) -> None:
        self._keks: dict[int, bytes] = {}
        for item in filter(None, (part.strip() for part in keks.split(","))):
            version, sep, encoded = item.partition(":")
            if not sep or not version.isdigit():
                raise VaultError("CONSENTRY_KEKS entries must look like '<version>:<base64 key>'")
            self._keks[int(version)] = _decode_key(encoded, f"CONSENTRY_KEKS version {version}")
        if not self._keks:
            raise VaultError("CONSENTRY_KEKS holds no key")
        self._blind = _decode_key(blind_index_key, "CONSENTRY_BLIND_INDEX_KEY")

    def versions(self) -> list[int]:
        """The versions given in the environment, ascending."""
        return sorted(self._keks)

    def kek(self, version: int) -> bytes:
        """The key of one version."""
        try:
            return self._keks[version]
        except KeyError:
            raise KeyUnavailable(f"CONSENTRY_KEKS has no version {version}") from None

    def add_version(self) -> int:
        """Refused: the environment is set by the operator, not by us."""
        raise VaultError(
            "the env key provider is read-only: add '<next version>:<base64 key>' to CONSENTRY_KEKS, "
            "restart, then run `consentry keys rotate` again"
        )

    def retire(self, version: int) -> bool:
        """Cannot delete from the environment; the caller tells the operator to remove it."""
        return False

    def blind_index_key(self) -> bytes:
        """The blind-index key from the environment."""
        return self._blind
