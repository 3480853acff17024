"""The brand SDK opens a self-custody grant's sealed profile, and refuses one that is not for it.

The broker hands the brand a JWE it cannot open (`clients.brand.sealed` draws the format): sealed by
the customer's browser to the brand's encryption key, bound to the issuer, the brand, the customer's
pairwise subject, the grant, its version and the purpose. Here a stand-in broker serves JWEs sealed
as the browser seals them (`seal`); the SDK must open the right one and refuse each of the wrong ones.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from joserfc import jwe
from joserfc.jwk import ECKey, OKPKey
from support import served

from clients.brand import (
    ConsentryClient,
    DecryptionKeys,
    GrantSession,
    SealedProfileRefused,
    TokenSet,
)

ISSUER = "https://consentry.example"
BRAND = "brd_grocer"
SUB = "pairwise-sub-1"
METADATA = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/oauth/authorize",
    "token_endpoint": f"{ISSUER}/oauth/token",
    "code_challenge_methods_supported": ["S256"],
    "consentry_api_versions": ["1"],
}
FIELDS = {"email": "ada@example.org", "dietary": ["vegetarian"], "household_size": 2}


def seal(key: ECKey | OKPKey, grant_id: UUID, *, version: int = 1, **changes: Any) -> str:
    """A grant's fields sealed as the customer's browser seals them, to the brand's public key."""
    claims = {
        "iss": ISSUER,
        "aud": BRAND,
        "sub": SUB,
        "grant_id": str(grant_id),
        "grant_version": version,
        "purpose": "personalised_offers",
        "fields": FIELDS,
        "iat": int(time.time()),
        **changes,
    }
    public = type(key).import_key(key.as_dict(private=False))
    header = {"alg": "ECDH-ES", "enc": "A256GCM", "kid": key.kid, "cty": "consentry-grant+json"}
    return jwe.encrypt_compact(header, json.dumps(claims).encode(), public)


class Broker:
    """Answers discovery, and `/v1/profile` with the sealed copy it holds for the grant."""

    def __init__(self, grant_id: UUID) -> None:
        self.grant_id, self.sealed, self.version = grant_id, "", 1

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/.well-known/"):
            return httpx.Response(200, json=METADATA)
        body = {"sub": SUB, "grant_id": str(self.grant_id), "purpose": "personalised_offers", "fields": {},
                "sealed": self.sealed, "grant_version": self.version}  # fmt: skip
        return httpx.Response(200, json=body)


def _session(grant_id: UUID) -> GrantSession:
    claims = base64.urlsafe_b64encode(json.dumps({"grant_id": str(grant_id)}).encode()).decode().rstrip("=")
    expires = datetime.now(UTC) + timedelta(hours=1)
    return GrantSession(TokenSet(access_token=f"e30.{claims}.sig", expires_at=expires))


@pytest.fixture
def key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "grocer-enc-1", "use": "enc"}, private=True)


@pytest.fixture
def grant_id() -> UUID:
    return uuid4()


@pytest.fixture
def broker(grant_id: UUID) -> Broker:
    return Broker(grant_id)


@pytest.fixture
def sdk(broker: Broker, key: ECKey) -> Iterator[ConsentryClient]:
    private = key.as_dict(private=True)
    with ConsentryClient(
        ISSUER, client_id=BRAND, transport=served.consentry(broker), decryption_keys=[private]
    ) as client:
        yield client


def test_the_sdk_opens_the_fields_sealed_to_the_brand(
    sdk: ConsentryClient, broker: Broker, key: ECKey, grant_id: UUID
) -> None:
    broker.sealed = seal(key, grant_id)
    profile = sdk.read_profile(_session(grant_id))
    assert profile.fields == FIELDS and profile.sub == SUB and profile.grant_version == 1


def test_an_x25519_key_opens_too(broker: Broker, grant_id: UUID) -> None:
    key = OKPKey.generate_key("X25519", parameters={"kid": "grocer-enc-x"}, private=True)
    broker.sealed = seal(key, grant_id)
    client = ConsentryClient(
        ISSUER,
        client_id=BRAND,
        transport=served.consentry(broker),
        decryption_keys=[key.as_dict(private=True)],
    )
    with client:
        assert client.read_profile(_session(grant_id)).fields == FIELDS


def test_a_jwe_for_another_brand_is_refused(sdk: ConsentryClient, broker: Broker, grant_id: UUID) -> None:
    theirs = ECKey.generate_key("P-256", parameters={"kid": "grocer-enc-1"}, private=True)  # same kid
    broker.sealed = seal(theirs, grant_id)
    with pytest.raises(SealedProfileRefused, match="does not open with this brand's keys"):
        sdk.read_profile(_session(grant_id))


def test_a_jwe_naming_another_brand_is_refused(
    sdk: ConsentryClient, broker: Broker, key: ECKey, grant_id: UUID
) -> None:
    broker.sealed = seal(key, grant_id, aud="brd_other")
    with pytest.raises(SealedProfileRefused, match="sealed for the brand 'brd_other'"):
        sdk.read_profile(_session(grant_id))


def test_a_jwe_swapped_between_two_grants_is_refused(
    sdk: ConsentryClient, broker: Broker, key: ECKey, grant_id: UUID
) -> None:
    """Two grants of the brand, each sealed to its key: the broker serves B's copy on A's read."""
    broker.sealed = seal(key, uuid4())
    with pytest.raises(SealedProfileRefused, match="belongs to grant"):
        sdk.read_profile(_session(grant_id))
    broker.sealed = seal(key, grant_id, sub="pairwise-sub-2")
    with pytest.raises(SealedProfileRefused, match="another customer"):
        sdk.read_profile(_session(grant_id))


def test_an_old_jwe_replayed_after_narrowing_is_refused(
    sdk: ConsentryClient, broker: Broker, key: ECKey, grant_id: UUID
) -> None:
    session = _session(grant_id)
    first = seal(key, grant_id, version=1)
    narrowed = seal(key, grant_id, version=2, fields={"email": "ada@example.org"})
    broker.sealed, broker.version = narrowed, 2
    assert sdk.read_profile(session).fields == {"email": "ada@example.org"}
    broker.sealed = first  # the broker says version 2, serves version 1
    with pytest.raises(SealedProfileRefused, match="version 1 of the grant, older than version 2"):
        sdk.read_profile(session)
    broker.version = 1  # the broker lies about the version too: the session remembers version 2
    with pytest.raises(SealedProfileRefused, match="older than version 2"):
        sdk.read_profile(session)


def test_a_changed_jwe_or_another_purpose_or_content_is_refused(
    sdk: ConsentryClient, broker: Broker, key: ECKey, grant_id: UUID
) -> None:
    good = seal(key, grant_id)
    head, enc_key, iv, ciphertext, tag = good.split(".")
    flipped = ("A" if ciphertext[0] != "A" else "B") + ciphertext[1:]
    broker.sealed = ".".join((head, enc_key, iv, flipped, tag))
    with pytest.raises(SealedProfileRefused, match="does not open"):
        sdk.read_profile(_session(grant_id))
    broker.sealed = seal(key, grant_id, purpose="marketing")
    with pytest.raises(SealedProfileRefused, match="purpose 'marketing'"):
        sdk.read_profile(_session(grant_id))
    public = ECKey.import_key(key.as_dict(private=False))
    broker.sealed = jwe.encrypt_compact(
        {"alg": "ECDH-ES", "enc": "A256GCM", "kid": key.kid, "cty": "consentry-grant+json"}, b"[1]", public
    )
    with pytest.raises(SealedProfileRefused, match="not a sealed grant"):
        sdk.read_profile(_session(grant_id))


def test_a_client_without_decryption_keys_says_what_to_pass(
    broker: Broker, key: ECKey, grant_id: UUID
) -> None:
    broker.sealed = seal(key, grant_id)
    client = ConsentryClient(ISSUER, client_id=BRAND, transport=served.consentry(broker))
    with client, pytest.raises(SealedProfileRefused, match="decryption_keys"):
        client.read_profile(_session(grant_id))


def test_decryption_keys_must_be_private_and_named() -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "k"}, private=True)
    with pytest.raises(ValueError, match="private JWK"):
        DecryptionKeys([key.as_dict(private=False)])
    with pytest.raises(ValueError, match="at least one"):
        DecryptionKeys([])
