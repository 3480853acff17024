"""KEK providers: file keys are private and versioned; env keys are validated and read-only."""

from __future__ import annotations

import base64
import stat
import threading
from pathlib import Path

import pytest

from vault.errors import KeyUnavailable, VaultError
from vault.keys import EnvKeyProvider, FileKeyProvider, active_version


def test_file_provider_creates_private_keys_on_first_use(tmp_path: Path) -> None:
    provider = FileKeyProvider(tmp_path / "keys")
    assert provider.versions() == [1]
    for path in (tmp_path / "keys").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert len(provider.kek(1)) == 32
    assert len(provider.blind_index_key()) == 32


def test_file_provider_reuses_existing_keys(tmp_path: Path) -> None:
    first = FileKeyProvider(tmp_path)
    second = FileKeyProvider(tmp_path)
    assert first.kek(1) == second.kek(1)
    assert first.blind_index_key() == second.blind_index_key()


def test_new_version_becomes_active_and_retired_version_is_gone(tmp_path: Path) -> None:
    provider = FileKeyProvider(tmp_path)
    assert provider.add_version() == 2
    assert active_version(provider) == 2
    assert provider.retire(1)
    assert provider.versions() == [2]
    with pytest.raises(KeyUnavailable):
        provider.kek(1)


def test_a_corrupt_key_file_is_refused(tmp_path: Path) -> None:
    provider = FileKeyProvider(tmp_path)
    (tmp_path / "kek-1.key").write_text("not base64!!")
    with pytest.raises(VaultError, match="base64"):
        provider.kek(1)


def _key(fill: int) -> str:
    return base64.b64encode(bytes([fill]) * 32).decode()


def test_env_provider_reads_versions_and_refuses_to_create() -> None:
    provider = EnvKeyProvider(f"1:{_key(1)}, 3:{_key(3)}", _key(9))
    assert provider.versions() == [1, 3]
    assert active_version(provider) == 3
    assert provider.kek(3) == bytes([3]) * 32
    with pytest.raises(VaultError, match="CONSENTRY_KEKS"):
        provider.add_version()
    assert provider.retire(1) is False


@pytest.mark.parametrize(
    ("keks", "message"),
    [("", "no key"), ("one:abc", "<version>"), (f"1:{base64.b64encode(b'short').decode()}", "32 bytes")],
)
def test_env_provider_rejects_bad_configuration(keks: str, message: str) -> None:
    with pytest.raises(VaultError, match=message):
        EnvKeyProvider(keks, _key(9))


def test_a_kek_being_added_by_another_process_is_never_read_half_written(tmp_path: Path) -> None:
    # The server's provider and `consentry keys rotate`'s provider share the key directory: the
    # server must see either no new version or the whole key, never an empty or partial file.
    server, rotation = FileKeyProvider(tmp_path), FileKeyProvider(tmp_path)
    done, failures, reads = threading.Event(), list[str](), [0]

    def read_the_active_kek() -> None:
        while not done.is_set():
            try:
                assert len(server.kek(active_version(server))) == 32
                reads[0] += 1
            except VaultError as exc:
                failures.append(str(exc))

    reader = threading.Thread(target=read_the_active_kek)
    reader.start()
    try:
        for _ in range(100):
            rotation.add_version()
    finally:
        done.set()
        reader.join()
    assert reads[0] > 0 and failures == []
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("kek-")) == ["blind-index.key"]


def test_a_kek_read_once_is_served_from_memory_until_its_file_changes_or_goes(tmp_path: Path) -> None:
    provider = FileKeyProvider(tmp_path / "keys")
    other = FileKeyProvider(tmp_path / "keys")  # another process sharing the directory
    first = provider.kek(1)
    path = tmp_path / "keys" / "kek-1.key"
    reads: list[Path] = []
    original = Path.read_text

    def counting(self: Path, *args: object, **kwargs: object) -> str:
        reads.append(self)
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Path, "read_text", counting)
        assert [provider.kek(1) for _ in range(5)] == [first] * 5
        assert reads == [], "an unchanged key file is not read again"
        replacement = base64.b64encode(b"\x07" * 32).decode() + "\n"
        path.unlink()
        path.write_text(replacement)  # a different file under the same name (never done; still honoured)
        assert provider.kek(1) == b"\x07" * 32 and reads == [path]
    assert other.retire(1)
    with pytest.raises(KeyUnavailable):  # retired by another process: gone here at once, cache or not
        provider.kek(1)
