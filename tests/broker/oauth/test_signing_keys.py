"""Token signing keys shared between processes: the server verifies while `consentry keys
rotate-signing` (another process, here another `SigningKeys` on the same directory) adds keys."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from joserfc import jwk, jws, jwt
from joserfc.jwk import OKPKey
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
    assert [k["kty"] for k in server.jwks()["keys"]].count("OKP") == 61
    assert all(path.suffix == ".jwk" for path in tmp_path.iterdir()), "no staging file is left behind"


def test_a_key_retired_by_another_process_while_listed_is_skipped(tmp_path: Path) -> None:
    # `rotate-signing` may delete an old key between a server's listing of the directory and its
    # reading of the file (a worker starting up sees every key afresh). A dangling link is that
    # moment held still: listed, but gone when opened.
    server = SigningKeys(tmp_path, clock=FakeClock())
    token = server.sign({"sub": "a-subject"})
    (tmp_path / "retired-meanwhile.jwk").symlink_to(tmp_path / "deleted")
    assert server.verify(token)["sub"] == "a-subject"
    assert [k["kty"] for k in server.jwks()["keys"]] == ["OKP", "RSA"]  # the ID tokens' key made now
    starting = SigningKeys(tmp_path, clock=FakeClock()).jwks()["keys"]  # a server starting now
    assert [k["kty"] for k in starting] == ["OKP", "RSA"]


def test_id_tokens_sign_with_rs256_and_never_pass_as_access_tokens(tmp_path: Path) -> None:
    keys = SigningKeys(tmp_path, clock=FakeClock())
    assert [path.suffix for path in tmp_path.iterdir()] == [".jwk"], "no RSA key until one is needed"
    signed = keys.sign({"sub": "a-subject"}, typ="JWT", alg="RS256")
    published = {k["kid"]: k for k in keys.jwks()["keys"]}
    header = jws.extract_compact(signed.encode()).headers()
    assert header["alg"] == "RS256" and published[header["kid"]]["kty"] == "RSA"
    assert published[header["kid"]]["alg"] == "RS256" and "d" not in published[header["kid"]]
    rsa = jwk.import_key(published[header["kid"]])
    assert jwt.decode(signed, rsa, algorithms=["RS256"]).claims == {"sub": "a-subject"}
    disguised = keys.sign({"sub": "a-subject"}, alg="RS256")  # typed at+jwt, signed with the RSA key
    with pytest.raises(InvalidJWT):
        keys.verify(disguised)
    with pytest.raises(ValueError, match="no signing keys"):
        keys.sign({"sub": "a-subject"}, alg="HS256")


def test_rotation_adds_and_retires_keys_algorithm_by_algorithm(tmp_path: Path) -> None:
    clock = FakeClock()
    keys = SigningKeys(tmp_path, clock=clock)
    first_rsa = keys.jwks()["keys"][-1]["kid"]
    first_ed = keys.jwks()["keys"][0]["kid"]
    new, retired = keys.rotate(max_token_lifetime=timedelta(minutes=10))
    assert retired == [] and set(new) == {"Ed25519", "RS256"}
    assert _kid(keys.sign({}, alg="RS256")) == new["RS256"] and _kid(keys.sign({})) == new["Ed25519"]
    clock.advance(minutes=11)
    newer, retired = keys.rotate(max_token_lifetime=timedelta(minutes=10))
    assert sorted(retired) == sorted([first_ed, first_rsa])
    assert {k["kid"] for k in keys.jwks()["keys"]} == {*new.values(), *newer.values()}


def test_a_key_file_written_before_id_tokens_is_an_ed25519_key(tmp_path: Path) -> None:
    legacy = OKPKey.generate_key("Ed25519", parameters={"kid": "legacy", "use": "sig"})  # no "alg"
    document = {"serial": 1, "created_at": "2026-01-01T00:00:00+00:00", "jwk": legacy.as_dict(private=True)}
    (tmp_path / "legacy.jwk").write_text(json.dumps(document))
    keys = SigningKeys(tmp_path, clock=FakeClock())
    token = keys.sign({"sub": "a-subject"})
    assert _kid(token) == "legacy" and keys.verify(token)["sub"] == "a-subject"


def _kid(token: str) -> str:
    return str(jws.extract_compact(token.encode()).headers()["kid"])
