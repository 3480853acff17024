"""KEK rotation: re-wrap every DEK under the newest KEK, online and resumable, then retire old KEKs.

Field ciphertexts never change: only the 60-byte wrapped DEKs do, in small committed batches, so a
server keeps serving throughout (a reader sees either the old wrapping, whose KEK still exists, or
the new one). Running it again after an interruption resumes: as long as any DEK is wrapped under an
older version, no new version is created and the remaining ones are moved to the newest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, text
from sqlmodel import Session, col, select

from vault.keys import active_version
from vault.models import VaultKey
from vault.profile import Vault


@dataclass(slots=True)
class RotationReport:
    """What a rotation did."""

    target_version: int
    resumed: bool
    rewrapped: int = 0
    retired: list[int] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)  # unused versions the provider cannot delete itself


def kek_usage(session: Session) -> dict[int, int]:
    """How many DEKs each KEK version wraps."""
    rows = session.exec(select(VaultKey.kek_version, func.count()).group_by(col(VaultKey.kek_version)))
    return dict(list(rows))  # a Result has .keys(), so dict() would treat it as a mapping


def _rewrap_batch(session: Session, vault: Vault, target: int, batch_size: int) -> int:
    query = (
        select(VaultKey)
        .where(VaultKey.kek_version != target)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    )
    keys = session.exec(query).all()
    for key in keys:
        vault.rewrap(session, key, target)
    return len(keys)


def _rewrap_all(sessions: Callable[[], Session], vault: Vault, target: int, batch_size: int) -> int:
    with sessions() as session:
        moved = _rewrap_batch(session, vault, target, batch_size)
        session.commit()
    return moved


def _wait_for_writers(session: Session) -> None:
    """Wait until every transaction that wrote a DEK row has ended, so the usage count that follows
    sees them. On PostgreSQL, a SHARE lock on the table waits for writers' ROW EXCLUSIVE locks (a
    sign-up that wrapped its DEK under the old KEK and commits after the re-wrap found nothing);
    on SQLite every write transaction holds the database's write lock, which ours waits for."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"LOCK TABLE {VaultKey.__tablename__} IN SHARE MODE"))


def rotate_keks(
    sessions: Callable[[], Session],
    vault: Vault,
    *,
    batch_size: int = 500,
    on_start: Callable[[int], None] = lambda total: None,
    on_progress: Callable[[int], None] = lambda done: None,
    retire_grace: Callable[[], None] = lambda: None,
) -> RotationReport:
    """Rotate to a new KEK (or resume an interrupted rotation) and retire versions nothing uses.

    `retire_grace` is called between the last re-wrap and the retirement, so requests that read a
    wrapped DEK just before it was re-wrapped finish with the old KEK still present. Old versions are
    retired only once every DEK row, including those of writers still in flight during the re-wrap,
    is under the new one, and while new writers are held off (`_wait_for_writers`'s lock).
    """
    with sessions() as session:
        usage = kek_usage(session)
    target = active_version(vault.keys)
    resumed = any(version != target for version in usage)
    if not resumed:
        target = vault.keys.add_version()
    report = RotationReport(target_version=target, resumed=resumed)
    on_start(sum(count for version, count in usage.items() if version != target))
    while True:
        while moved := _rewrap_all(sessions, vault, target, batch_size):
            report.rewrapped += moved
            on_progress(moved)
        retire_grace()
        with sessions() as session:
            _wait_for_writers(session)
            if set(kek_usage(session)) <= {target}:
                # Retire while writers are held off: a sign-up that wrapped its key under an old KEK
                # and writes only after this finds that KEK gone, and re-wraps (`Vault.create`).
                for version in vault.keys.versions():
                    if version != target:
                        (report.retired if vault.keys.retire(version) else report.kept).append(version)
                return report
        # A writer that wrapped under an old KEK committed after the re-wrap passed it: again.
