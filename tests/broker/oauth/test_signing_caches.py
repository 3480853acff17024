"""The caches that keep signature checks off the hot path, and what invalidates them: a token's
`exp`, its key's retirement (here or in another process), a new key, a revocation (never cached)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jws
from support.core import FakeClock, bearer
from support.oauth import BrandCredentials, brand_token

from broker.oauth import signing
from broker.oauth.signing import InvalidJWT, SigningKeys


def _claims(clock: FakeClock, seconds: int = 600) -> dict[str, Any]:
    return {"sub": "a-subject", "exp": int(clock().timestamp()) + seconds}


def _count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls, decode = [0], signing.jwt.decode

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return decode(*args, **kwargs)

    monkeypatch.setattr(signing.jwt, "decode", counted)
    return calls


def test_a_verified_token_is_remembered_until_its_exp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    keys = SigningKeys(tmp_path, clock=clock)
    token, decodes = keys.sign(_claims(clock, 60)), _count_decodes(monkeypatch)
    assert keys.verify(token)["sub"] == keys.verify(token)["sub"] == "a-subject"
    assert decodes == [1]
    keys.verify(token)["sub"] = "changed"  # callers get a copy
    assert keys.verify(token)["sub"] == "a-subject"
    clock.advance(seconds=60)
    keys.verify(token)  # past its exp: checked again (and refused by the caller, `verify_claims`)
    assert decodes == [2]


def test_a_cached_token_stops_verifying_once_its_key_is_retired_elsewhere(tmp_path: Path) -> None:
    clock = FakeClock()
    server = SigningKeys(tmp_path, clock=clock)
    token = server.sign(_claims(clock))
    assert server.verify(token)
    signer = server.jwks()["keys"][0]["kid"]
    SigningKeys(tmp_path, clock=clock).add()  # another process: `consentry keys rotate-signing`
    (tmp_path / f"{signer}.jwk").unlink()  # and an operator withdraws the key that signed the token
    with pytest.raises(InvalidJWT):
        server.verify(token)


def _access_kids(keys: SigningKeys) -> list[str]:
    """The kids of the published keys that sign access tokens (Ed25519), oldest first; the JWKS also
    holds the ID tokens' RSA key, which the first call makes."""
    return [k["kid"] for k in keys.jwks()["keys"] if k["kty"] == "OKP"]


def test_a_key_added_elsewhere_is_seen_once_the_listing_is_cached(tmp_path: Path) -> None:
    clock = FakeClock()
    server = SigningKeys(tmp_path, clock=clock)
    server.jwks()  # the RSA key made before the directory's mtime is set back
    long_ago = time.time_ns() - 60 * 10**9
    os.utime(tmp_path, ns=(long_ago, long_ago))
    assert len(_access_kids(server)) == 1  # the listing is cached now
    new_kid = SigningKeys(tmp_path, clock=clock).add()
    assert _access_kids(server)[-1] == new_kid
    assert server.verify(server.sign(_claims(clock)))  # signed by the new key
    assert server.public_key(new_kid) is not None


def _kid(token: str) -> str:
    """The kid a token names (its header, unverified)."""
    return str(jws.extract_compact(token.encode()).headers()["kid"])


def test_a_key_added_elsewhere_signs_here_within_the_recheck_and_one_added_here_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    server = SigningKeys(tmp_path, clock=clock)
    first = _kid(server.sign(_claims(clock)))
    server.jwks()  # the RSA key made before the directory's mtime is set back
    long_ago = time.time_ns() - 60 * 10**9
    os.utime(tmp_path, ns=(long_ago, long_ago))  # a listing old enough to trust
    monkeypatch.setattr(signing, "SIGNER_RECHECK_NS", 3600 * 10**9)  # a window that cannot elapse here
    elsewhere = SigningKeys(tmp_path, clock=clock).add()
    token = server.sign(_claims(clock))
    assert _kid(token) == first  # within the window: the previous key, still published, signs
    assert server.verify(token) and _access_kids(server) == [first, elsewhere]
    monkeypatch.setattr(signing, "SIGNER_RECHECK_NS", 0)  # the window elapsed
    assert _kid(server.sign(_claims(clock))) == elsewhere
    monkeypatch.setattr(signing, "SIGNER_RECHECK_NS", 3600 * 10**9)
    here = server.add()
    assert _kid(server.sign(_claims(clock))) == here  # this process's own key: at once


def test_a_listing_taken_within_the_timestamp_granularity_is_not_trusted(tmp_path: Path) -> None:
    clock = FakeClock()
    server = SigningKeys(tmp_path, clock=clock)
    server.jwks()  # the RSA key made first
    recent = tmp_path.stat().st_mtime_ns
    assert len(_access_kids(server)) == 1
    SigningKeys(tmp_path, clock=clock).add()
    os.utime(tmp_path, ns=(recent, recent))  # a coarse clock: the change left the mtime as it was
    assert len(_access_kids(server)) == 2


def test_the_verified_cache_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signing, "VERIFIED_CACHE_SIZE", 4)
    clock = FakeClock()
    keys = SigningKeys(tmp_path, clock=clock)
    tokens = [keys.sign({**_claims(clock), "n": n}) for n in range(10)]
    for token in tokens:
        keys.verify(token)
    assert len(keys._verified) <= 4
    assert token in keys._verified  # the newest stays


def test_the_verified_cache_holds_its_bound_and_drops_the_oldest(tmp_path: Path) -> None:
    clock = FakeClock()
    keys = SigningKeys(tmp_path, clock=clock)
    tokens = [keys.sign({**_claims(clock), "n": n}) for n in range(signing.VERIFIED_CACHE_SIZE + 10)]
    for token in tokens:
        keys.verify(token)
    assert len(keys._verified) == signing.VERIFIED_CACHE_SIZE
    assert tokens[9] not in keys._verified and tokens[10] in keys._verified and tokens[-1] in keys._verified


def test_expired_tokens_leave_the_verified_cache_when_the_next_is_remembered(tmp_path: Path) -> None:
    clock = FakeClock()
    keys = SigningKeys(tmp_path, clock=clock)
    short, long = keys.sign(_claims(clock, 60)), keys.sign(_claims(clock, 600))
    keys.verify(short), keys.verify(long)
    clock.advance(seconds=60)
    keys.verify(keys.sign(_claims(clock)))
    assert short not in keys._verified  # never looked up again, yet gone: it can no longer be used
    assert long in keys._verified and len(keys._verified) == 2


def test_a_revoked_brand_token_fails_on_the_very_next_read(
    client: TestClient, brand: BrandCredentials
) -> None:
    token = brand_token(client, brand)
    assert client.get("/v1/offers", headers=bearer(token)).status_code == 200  # its claims are cached
    assert client.post("/oauth/revoke", data={"token": token}, auth=brand.auth()).status_code == 200
    refused = client.get("/v1/offers", headers=bearer(token))
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]


def test_brand_tokens_have_jtis_of_their_own_so_revoking_one_leaves_the_others(
    client: TestClient, brand: BrandCredentials, runtime: Any
) -> None:
    tokens = [brand_token(client, brand) for _ in range(3)]
    jtis = [runtime.oauth.signing.verify(token)["jti"] for token in tokens]
    assert len(set(jtis)) == 3 and all(len(jti) == 32 and int(jti, 16) >= 0 for jti in jtis)
    assert client.post("/oauth/revoke", data={"token": tokens[0]}, auth=brand.auth()).status_code == 200
    assert client.get("/v1/offers", headers=bearer(tokens[0])).status_code == 401
    assert all(client.get("/v1/offers", headers=bearer(t)).status_code == 200 for t in tokens[1:])
