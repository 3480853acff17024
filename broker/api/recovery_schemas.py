"""Shapes of the password reset and sign-in link API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from broker.accounts import passwords
from broker.api.schemas import VerificationCode


class RecoveryRequest(BaseModel):
    """The address of the account."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320, examples=["ada@example.org"])


class RecoveryAccepted(BaseModel):
    """The one answer to every request that passes validation, whether or not the address has an
    account: that is told only to the mailbox."""

    status: str = Field(default="accepted", examples=["accepted"])
    detail: str


class PasswordReset(VerificationCode):
    """The emailed code and the new password (the sign-up rules)."""

    new_password: str = Field(
        max_length=1024,
        json_schema_extra={"minLength": passwords.MIN_LENGTH, "maxLength": passwords.MAX_LENGTH},
    )
