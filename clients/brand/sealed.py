"""Profiles sealed to the brand: what a self-custody grant's reads return.

A customer in self-custody holds the only key to their vault. At consent (and whenever they edit the
profile or narrow the grant) their browser encrypts the granted fields to one of the brand's
registered encryption keys (`jwks`, `use: enc`, ECDH-ES on P-256 or X25519), and the broker hands the
brand that JWE, which it cannot open itself. The SDK opens it with the brand's private keys and
checks what it is bound to before any field is used.

The JWE (compact, RFC 7516): protected header `alg` "ECDH-ES", `enc` "A256GCM", `kid` (the brand's
key), `cty` "consentry-grant+json"; its plaintext, authenticated by A256GCM, is the JSON object

    iss            the broker's issuer
    aud            the brand's client_id
    sub            the customer's pairwise subject at this brand
    grant_id       the grant the fields were granted by
    grant_version  1, 2, …: one more every time the browser seals the grant again (edit, narrowing)
    purpose        the purpose of the read
    fields         the granted fields and their values
    iat            when it was sealed (seconds since the epoch)

Each must match the read: a JWE for another brand does not open (and if it did, `aud` differs), one
moved from another grant names another `grant_id` or `sub`, and an older one replayed after the grant
was narrowed names an older `grant_version` than the broker's answer, or than one this session has
already opened. Opening needs joserfc: `pip install 'consentry-brand[self-custody]'`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pydantic

from clients.brand.errors import MalformedResponse
from clients.brand.models import Profile

if TYPE_CHECKING:
    from joserfc.jwk import KeySet

__all__ = ["CONTENT_TYPE", "DecryptionKeys", "SealedProfileRefused", "open_profile"]

CONTENT_TYPE = "consentry-grant+json"
ALGORITHM, ENCRYPTION = "ECDH-ES", "A256GCM"


class SealedProfileRefused(MalformedResponse):
    """A sealed profile that must not be used: it does not open with the brand's keys, or it is bound
    to another brand, grant, subject, purpose or an older version of the grant (`reason` says which)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"the sealed profile must not be used: {reason}")


class _Sealed(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", frozen=True)

    iss: str
    aud: str
    sub: str
    grant_id: UUID
    grant_version: int = pydantic.Field(ge=1)
    purpose: str
    fields: dict[str, bool | str | int | list[str]]
    iat: int


class DecryptionKeys:
    """The brand's private encryption keys (JWKs with `d`), to open sealed profiles with."""

    def __init__(self, keys: Sequence[Mapping[str, Any]]) -> None:
        if not keys:
            raise ValueError(
                "pass at least one private JWK (the private half of a key registered as use enc)"
            )
        try:
            from joserfc.jwk import KeySet
        except ImportError:
            raise ImportError(
                "opening sealed profiles needs joserfc: pip install 'consentry-brand[self-custody]'"
            ) from None
        missing = [key.get("kid") for key in keys if "d" not in key or not key.get("kid")]
        if missing:
            raise ValueError("each decryption key must be a private JWK (with d) that names its kid")
        self._keys: KeySet = KeySet.import_key_set({"keys": [dict(key) for key in keys]})

    def open(self, token: str) -> tuple[dict[str, Any], bytes]:
        """The JWE's protected header and plaintext; SealedProfileRefused if it does not open."""
        from joserfc import jwe
        from joserfc.errors import JoseError

        try:
            opened = jwe.decrypt_compact(token, self._keys, algorithms=[ALGORITHM, ENCRYPTION])
        except (JoseError, ValueError, TypeError) as exc:
            raise SealedProfileRefused(
                f"it does not open with this brand's keys ({type(exc).__name__}): it was sealed to"
                " another key, or changed"
            ) from None
        return dict(opened.protected), opened.plaintext or b""


def open_profile(
    profile: Profile,
    keys: DecryptionKeys | None,
    *,
    issuer: str,
    client_id: str,
    seen_version: int,
) -> Profile:
    """`profile` with the fields its JWE holds, after every binding check; `seen_version` is the
    highest grant version this session opened before (0 for none)."""
    if profile.sealed is None:
        return profile
    if keys is None:
        raise SealedProfileRefused(
            "this grant is in self-custody and its fields are sealed to your encryption key: create the"
            " client with decryption_keys=[your private JWK]"
        )
    header, plaintext = keys.open(profile.sealed)
    if header.get("cty") != CONTENT_TYPE:
        raise SealedProfileRefused(f"its header says cty {header.get('cty')!r}, not {CONTENT_TYPE!r}")
    try:
        sealed = _Sealed.model_validate(json.loads(plaintext))
    except (ValueError, pydantic.ValidationError):
        raise SealedProfileRefused("what it holds is not a sealed grant (JSON with its bindings)") from None
    checks = (
        (sealed.iss.rstrip("/") == issuer.rstrip("/"), f"it was sealed for the broker {sealed.iss!r}"),
        (sealed.aud == client_id, f"it was sealed for the brand {sealed.aud!r}, not {client_id!r}"),
        (
            sealed.grant_id == profile.grant_id,
            f"it belongs to grant {sealed.grant_id}, not {profile.grant_id}",
        ),
        (sealed.sub == profile.sub, "it was sealed for another customer (sub)"),
        (sealed.purpose == profile.purpose, f"it was sealed for the purpose {sealed.purpose!r}"),
        (
            sealed.grant_version >= max(profile.grant_version or 0, seen_version),
            f"it is version {sealed.grant_version} of the grant, older than version"
            f" {max(profile.grant_version or 0, seen_version)}: a copy from before the grant changed",
        ),
    )
    for holds, reason in checks:
        if not holds:
            raise SealedProfileRefused(reason)
    return profile.model_copy(update={"fields": sealed.fields, "grant_version": sealed.grant_version})
