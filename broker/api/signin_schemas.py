"""Request and response shapes of second factors, passkeys and step-up."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from broker.accounts.signin import SecondFactorRequired

Credential = dict[str, Any]
_CREDENTIAL = Field(
    default=None,
    description="a passkey's answer: PublicKeyCredential JSON (base64url fields) from navigator.credentials",
)


class SecondFactorPending(BaseModel):
    """The password was right and the account has a second factor: finish at POST /v1/sessions/mfa."""

    status: Literal["second_factor_required"] = "second_factor_required"
    mfa_token: str = Field(description="single use; send it to POST /v1/sessions/mfa before expires_at")
    expires_at: datetime
    methods: list[Literal["passkey", "totp", "recovery_code"]]
    passkey_options: dict[str, Any] | None = Field(
        default=None, description="PublicKeyCredentialRequestOptions (JSON) when a passkey may be used"
    )

    @classmethod
    def of(cls, pending: SecondFactorRequired) -> SecondFactorPending:
        """The public shape of a pending login."""
        return cls(
            mfa_token=pending.mfa_token,
            expires_at=pending.expires_at,
            methods=pending.methods,
            passkey_options=pending.passkey_options,
        )


class SecondFactorProof(BaseModel):
    """One second factor: exactly one of `code`, `recovery_code` or `credential`."""

    model_config = ConfigDict(extra="forbid")

    code: str | None = Field(default=None, max_length=20, description="the 6 digits of the authenticator app")
    recovery_code: str | None = Field(default=None, max_length=40, examples=["abcd-efgh-ijkl-mnop"])
    credential: Credential | None = _CREDENTIAL


class SecondFactorAnswer(SecondFactorProof):
    """The second step of a login."""

    mfa_token: str = Field(max_length=100)


class PasskeyAssertion(BaseModel):
    """A passkey's answer to a challenge from the matching `.../options` endpoint."""

    model_config = ConfigDict(extra="forbid")

    credential: Credential = Field(description="the PublicKeyCredential JSON from navigator.credentials.get")


class Reauthentication(SecondFactorProof):
    """Prove it is still you: `password` (plus `code` or `recovery_code` with a second factor) or a
    passkey `credential` (from POST /v1/sessions/current/reauthenticate/options)."""

    password: str | None = Field(default=None, max_length=1024)


class SessionProof(BaseModel):
    """How and when the current session last proved who its customer is."""

    authenticated_at: datetime
    second_factor: bool
    method: str


class PasskeyRegistration(BaseModel):
    """A new passkey: a name for it and the credential from navigator.credentials.create."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, examples=["Laptop"])
    credential: Credential = Field(
        description="the PublicKeyCredential JSON from navigator.credentials.create"
    )


class PasskeyRename(BaseModel):
    """A passkey's new name."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)


class PasskeyPublic(BaseModel):
    """A passkey as its owner sees it."""

    id: UUID
    name: str
    created_at: datetime
    last_used_at: datetime | None


class TotpEnrolmentPublic(BaseModel):
    """Set up an authenticator app: scan `qr_svg` or type `secret`; shown once."""

    secret: str
    otpauth_uri: str
    qr_svg: str = Field(description="the otpauth URI as a QR code, SVG drawn by the server")


class TotpCode(BaseModel):
    """A code from the authenticator app."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(max_length=20, examples=["123456"])


class TotpStatus(BaseModel):
    """Whether an authenticator app is set up."""

    enabled: bool
    pending: bool = Field(description="a set-up was started and awaits its first code")


class RecoveryCodesPublic(BaseModel):
    """A new set of recovery codes, shown this once; each works once."""

    codes: list[str]


class RecoveryCodesStatus(BaseModel):
    """How many unused recovery codes remain."""

    remaining: int
