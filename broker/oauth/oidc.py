"""OpenID Connect (Core 1.0) on the code flow: the `openid` scope, ID tokens, and the standard claims
as the vault's fields.

What OpenID Connect adds here never widens what a grant covers:

- The standard scopes (`profile`, `email`, `phone`, `address`) and the `claims` request parameter
  name vault fields (`SCOPE_FIELDS`, `CLAIM_FIELDS`), and only those of the offer the request names
  are asked for (`broker.oauth.flows.OfferBinding`): asking for `email` under an offer without it
  asks for nothing.
- The ID token says who authenticated, how and when (`sub`, `auth_time`, `acr`, `amr`, `nonce`,
  `at_hash`) and holds no personal data: every claim about the customer comes from UserInfo, whose
  every call is an audited read like `GET /v1/profile` (`userinfo_claims`).
- Its `sub` is the pairwise subject the brand's access tokens carry: one brand cannot match its
  customers with another's.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from authlib.oauth2.rfc6749 import InvalidRequestError

__all__ = [
    "ACR_MULTI_FACTOR",
    "ACR_SINGLE_FACTOR",
    "CLAIM_FIELDS",
    "FIELDS_CLAIM",
    "OIDC_SCOPES",
    "OPENID",
    "SCOPE_FIELDS",
    "SEALED_CLAIM",
    "SEALED_VERSION_CLAIM",
    "Authentication",
    "asked_fields",
    "half_hash",
    "is_openid",
    "userinfo_claims",
]  # fmt: skip

OPENID: Final = "openid"

# The standard scopes (Core §5.4) as the vault's fields; a claim the vault has no field for (name,
# picture, gender ...) is simply never given.
SCOPE_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "profile": ("given_name", "family_name", "birthdate"),
    "email": ("email",),
    "phone": ("phone",),
    "address": ("postcode", "city", "country"),
}
OIDC_SCOPES: Final = (OPENID, *SCOPE_FIELDS)

# The standard claims (Core §5.1) as the vault's fields, for the `claims` request parameter (§5.5).
CLAIM_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "given_name": ("given_name",),
    "family_name": ("family_name",),
    "birthdate": ("birthdate",),
    "email": ("email",),
    "email_verified": ("email",),
    "phone_number": ("phone",),
    "phone_number_verified": ("phone",),
    "address": ("postcode", "city", "country"),
}

# The claim that holds the fields with no standard claim (dietary, interests, household_size ...): a
# collision-resistant name (Core §5.1.2), an object of field name to value.
FIELDS_CLAIM: Final = "https://consentry.dev/claims/fields"
PREFERENCES_CLAIM: Final = "https://consentry.dev/claims/preferences"  # what every brand must honour
# A self-custody grant's fields, sealed to the brand (`broker.consent.sealed`), and the copy's version.
SEALED_CLAIM: Final = "https://consentry.dev/claims/sealed"
SEALED_VERSION_CLAIM: Final = "https://consentry.dev/claims/sealed_version"

ACR_SINGLE_FACTOR: Final = "urn:consentry:acr:single-factor"
ACR_MULTI_FACTOR: Final = "urn:consentry:acr:multi-factor"

# How the customer proved who they are (the portal session's `auth_method`) as RFC 8176 methods.
_AMR: Final[Mapping[str, tuple[str, ...]]] = {
    "password": ("pwd",),
    "passkey": ("hwk", "user", "mfa"),
    "password+totp": ("pwd", "otp", "mfa"),
    "password+recovery": ("pwd", "otp", "mfa"),
    "password+passkey": ("pwd", "hwk", "mfa"),
}


@dataclass(frozen=True, slots=True)
class Authentication:
    """How and when the customer last proved who they are, as an ID token tells it."""

    at: datetime
    method: str
    second_factor: bool

    @property
    def acr(self) -> str:
        """The authentication context class: single- or multi-factor."""
        return ACR_MULTI_FACTOR if self.second_factor else ACR_SINGLE_FACTOR

    @property
    def amr(self) -> list[str]:
        """The methods used (RFC 8176); an unknown one says only whether a second factor was used."""
        known = _AMR.get(self.method)
        if known is not None:
            return list(known)
        return ["mfa"] if self.second_factor else ["pwd"]


def is_openid(scope: str | None) -> bool:
    """Whether a scope string asks for OpenID Connect."""
    return OPENID in (scope or "").split()


def asked_fields(scopes: Iterable[str], claims_parameter: str | None) -> list[str]:
    """The vault fields the standard scopes and the `claims` parameter name, each once, in the order
    named (unchecked against any offer: the caller keeps those its offer has). A `claims` parameter
    that is not a JSON object of `userinfo` and `id_token` objects is an `invalid_request`."""
    named = [field for scope in scopes for field in SCOPE_FIELDS.get(scope, ())]
    if claims_parameter is not None:
        claims = _requested_claims(claims_parameter)
        named += [field for claim in claims for field in CLAIM_FIELDS.get(claim, ())]
    return list(dict.fromkeys(named))


def _requested_claims(claims_parameter: str) -> list[str]:
    try:
        parsed = json.loads(claims_parameter)
    except ValueError:
        raise InvalidRequestError("claims must be a JSON object (OpenID Connect Core, section 5.5)") from None
    if not isinstance(parsed, dict) or not set(parsed) <= {"userinfo", "id_token"}:
        raise InvalidRequestError("claims must be a JSON object with userinfo and id_token members")
    names = []
    for member in parsed.values():
        if not isinstance(member, dict):
            raise InvalidRequestError("claims.userinfo and claims.id_token must be JSON objects")
        names += [str(name) for name in member]
    return names


def half_hash(value: str, alg: str) -> str:
    """`at_hash` / `c_hash` (Core §3.1.3.6): the left half of the value's hash, base64url. SHA-256 for
    RS256; SHA-512 for Ed25519, the hash EdDSA over Ed25519 uses."""
    digest = (hashlib.sha512 if alg == "Ed25519" else hashlib.sha256)(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def userinfo_claims(sub: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """UserInfo's claims (Core §5.3.2) for a read's values (`ProfileReads`: the granted fields the
    customer filled in, and `email_verified` beside `email`): the standard claims where one exists,
    the other fields under `FIELDS_CLAIM`. A phone number is never verified by the broker."""
    claims: dict[str, Any] = {"sub": sub}
    ours: dict[str, Any] = {}
    address: dict[str, Any] = {}
    for field, value in values.items():
        if field in ("given_name", "family_name", "birthdate", "email", "email_verified"):
            claims[field] = value
        elif field == "phone":
            claims["phone_number"], claims["phone_number_verified"] = value, False
        elif field in ("postcode", "city", "country"):
            address[{"postcode": "postal_code", "city": "locality", "country": "country"}[field]] = value
        else:
            ours[field] = value
    if address:
        claims["address"] = address
    if ours:
        claims[FIELDS_CLAIM] = ours
    return claims
