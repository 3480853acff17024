"""Shapes of the self-custody API (`broker.api.custody`): what the customer's browser sends and reads.

Binary values (ciphertexts, salts, wrapped keys) travel as unpadded base64url text."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, WithJsonSchema

from broker.usecases.custody import SealIn
from vault.held import MAX_CIPHERTEXT, MAX_UNLOCKS, Unlock

_BASE64URL = re.compile(r"(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?")  # unpadded: never 4n+1 long


def _decoded(value: object) -> bytes:
    if not isinstance(value, str) or len(value) > 4 * MAX_CIPHERTEXT // 3 + 4:
        raise ValueError("must be base64url text (unpadded), at most 11 KiB")
    if not _BASE64URL.fullmatch(value):
        raise ValueError("must be base64url text (unpadded: A-Z, a-z, 0-9, - and _)")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except binascii.Error:
        raise ValueError("must be base64url text (unpadded)") from None


Base64Url = Annotated[
    bytes,
    BeforeValidator(_decoded),
    WithJsonSchema({"type": "string", "format": "base64url", "pattern": f"^{_BASE64URL.pattern}$"}),
]
_FieldName = Annotated[str, StringConstraints(min_length=1, max_length=40)]


class UnlockIn(BaseModel):
    """The held data key, wrapped in the browser under a key derived from a passkey's PRF output or from
    the recovery key (HKDF-SHA256, then AES-256-GCM: the README's "Self-custody" gives the format)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    kind: Literal["passkey", "recovery"]
    passkey_id: UUID | None = None
    """The passkey (one of yours) whose PRF output unwraps it; only for kind passkey."""
    salt: Base64Url
    """The HKDF salt: 32 random bytes."""
    wrapped_key: Base64Url
    """The wrapped key: format byte 1, a 12-byte nonce, the 32-byte key and the 16-byte tag."""

    def unlock(self) -> Unlock:
        return Unlock(
            kind=self.kind, salt=self.salt, wrapped_dek=self.wrapped_key, passkey_id=self.passkey_id
        )


class HoldIn(BaseModel):
    """Move the profile to self-custody: every stored field but the email, sealed in the browser under
    the new key; its unlocks; every live grant sealed to its brand."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    fields: dict[_FieldName, Base64Url] = Field(max_length=20)
    """{field: ciphertext}: exactly the fields your profile holds, the email left out."""
    unlocks: list[UnlockIn] = Field(min_length=2, max_length=MAX_UNLOCKS)
    """At least one passkey's, and exactly one recovery key's."""
    grants: dict[UUID, SealIn] = Field(default_factory=dict, max_length=1000)
    """{grant id: its sealed copies}: every live grant, each at its `sealed_version` plus one."""


class ReleaseIn(BaseModel):
    """Give the profile back to the broker's custody: every held field's value, opened in the browser."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    fields: dict[_FieldName, Any] = Field(max_length=20)
    """{field: value}: exactly the held fields, validated as profile values are."""


class HeldFieldsIn(BaseModel):
    """Fields sealed anew in the browser (null removes one), with the live grants the change reaches."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    fields: dict[_FieldName, Base64Url | None] = Field(min_length=1, max_length=20)
    """{field: ciphertext, or null to remove it}."""
    grants: dict[UUID, SealIn] = Field(default_factory=dict, max_length=1000)
    """{grant id: its sealed copies}: exactly the live grants that hold a changed field (or a field
    derived from one)."""


class SealsIn(BaseModel):
    """Live grants sealed anew without a change of the profile (a missing copy, a brand's new key)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    grants: dict[UUID, SealIn] = Field(min_length=1, max_length=1000)


class PasskeyUnlockPublic(BaseModel):
    id: UUID
    credential_id: str = Field(description="the WebAuthn credential id, base64url")
    unlocks: bool = Field(description="whether this passkey can unlock the held vault")


class HeldUnlockPublic(BaseModel):
    id: UUID
    kind: Literal["passkey", "recovery"]
    passkey_id: UUID | None
    salt: str = Field(description="base64url")
    wrapped_key: str = Field(description="base64url")
    created_at: datetime


class HeldPublic(BaseModel):
    data_key_version: int = Field(description="the held key's version, in each field's AAD")
    unlocks: list[HeldUnlockPublic]
    fields: dict[str, str] = Field(description="{field: ciphertext, base64url}")
    field_updated_at: dict[str, datetime]


class GrantToSeal(BaseModel):
    """A live grant and what sealing it to its brand takes."""

    grant_id: UUID
    client_id: str
    brand_name: str
    sub: str = Field(description="your pairwise subject at this brand: the JWE's `sub`")
    purposes: dict[str, list[str]] = Field(description="{purpose: fields}: one sealed copy each")
    keys: list[dict[str, Any]] = Field(
        description="the brand's encryption keys (public JWKs, use enc); empty: it cannot receive sealed data"
    )
    sealed_version: int = Field(description="the version of its sealed copy; 0 when it has none")
    sealed: bool = Field(
        description="whether its copies are all there and sealed to a key the brand still has; false: "
        "seal it anew (POST /v1/me/custody/seals)"
    )


class CustodyView(BaseModel):
    """Who holds the key of your profile, and everything your browser needs to open it and seal your
    grants."""

    custody: Literal["broker", "customer"] = Field(
        description="broker: Consentry holds the key (it can read your profile to serve brands); "
        "customer: only your passkeys and recovery key open it"
    )
    customer_id: UUID = Field(description="your id: in every field's AAD")
    issuer: str = Field(description="the JWE's `iss`")
    prf_input: str = Field(description="the PRF input (base64url) a passkey is asked to evaluate")
    rp_id: str = Field(description="the relying party your passkeys belong to")
    email: str | None = Field(description="your email address, which stays in Consentry's custody")
    email_verified: bool = Field(
        description="whether you confirmed it: a brand is given only a confirmed address, so seal it "
        "only then"
    )
    passkeys: list[PasskeyUnlockPublic]
    held: HeldPublic | None = Field(description="the held vault; null in Consentry's custody")
    grants: list[GrantToSeal]


class PurposeFields(BaseModel):
    slug: str
    fields: list[str]


class OfferSealing(BaseModel):
    """What sealing a grant of an offer to its brand takes, for a consent your browser makes (the
    portal's consent screen and directory do the same)."""

    fields: list[str] = Field(description="the fields the offer asks for")
    required: list[str] = Field(description="those it requires")
    purpose: str = Field(description="its purpose (or its first, with `purposes`)")
    purposes: list[PurposeFields] = Field(description="an offer of several purposes: each, with its fields")
    client_id: str = Field(description="the JWE's `aud`")
    sub: str = Field(description="your pairwise subject at the brand: the JWE's `sub`")
    keys: list[dict[str, Any]] = Field(
        description="the brand's encryption keys; empty: it cannot receive sealed data"
    )
