"""Token signing keys shared between processes: the server verifies while `consentry keys
rotate-signing` (another process, here another `SigningKeys` on the same directory) adds keys."""

from __future__ import annotations

import threading
from pathlib import Path

from support.core import FakeClock

from broker.oauth.signing import InvalidJWT, SigningKeys


def test_a_key_being_added_by_another_process_never_fails_a_verification(tmp_path: Path) -> None:
    clock = FakeClock()
    server = SigningKeys(tmp_path, clock=clock)
    token = server.sign({"sub": "a-subject"})
    rotation = SigningKeys(tmp_path, clock=clock)
    done, failures, verified = threading.Event(), list[str](), [0]

    def verify_until_done() -> None:
        while not done.is_set():
            try:
                assert server.verify(token)["sub"] == "a-subject"
                verified[0] += 1
            except (InvalidJWT, ValueError) as exc:  # a half-written key file fails to parse
                failures.append(repr(exc))

    verifier = threading.Thread(target=verify_until_done)
    verifier.start()
    try:
        for _ in range(60):
            rotation.add()
    finally:
        done.set()
        verifier.join()
    assert verified[0] > 0 and failures == []
    assert len(server.jwks()["keys"]) == 61
    assert all(path.suffix == ".jwk" for path in tmp_path.iterdir()), "no staging file is left behind"


def test_a_key_retired_by_another_process_while_listed_is_skipped(tmp_path: Path) -> None:
    # `rotate-signing` may delete an old key between a server's listing of the directory and its
    # reading of the file (a worker starting up sees every key afresh). A dangling link is that
    # moment held still: listed, but gone when opened.
    server = SigningKeys(tmp_path, clock=FakeClock())
    token = server.sign({"sub": "a-subject"})
    (tmp_path / "retired-meanwhile.jwk").symlink_to(tmp_path / "deleted")
    assert server.verify(token)["sub"] == "a-subject"
    assert len(server.jwks()["keys"]) == 1
    assert len(SigningKeys(tmp_path, clock=FakeClock()).jwks()["keys"]) == 1  # a server starting now
