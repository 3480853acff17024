"""Request and response shapes of the accounts and customer API."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from broker.accounts import passwords
from vault.fields import DERIVED_FIELDS, STORED_FIELDS


class Credentials(BaseModel):
    """An email and a password."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320, examples=["ada@example.org"])
    password: str = Field(max_length=1024, examples=["correct horse battery staple"])


class SignUp(Credentials):
    """An email and a new password; the document states the password's length rules, which the
    accounts service enforces with its own messages."""

    password: str = Field(
        max_length=1024,
        examples=["correct horse battery staple"],
        json_schema_extra={"minLength": passwords.MIN_LENGTH, "maxLength": passwords.MAX_LENGTH},
    )


SIGN_UP_ACCEPTED = (
    "If this address can be used for a new account, a message with a code is on its way to it: "
    "follow it to confirm the address. If the address already has an account, its owner has been told."
)


class SignUpAccepted(BaseModel):
    """The one answer to every sign-up that passes validation: whether an account was made, and
    whether the address already had one, is told only to the mailbox."""

    status: str = Field(default="accepted", examples=["accepted"])
    detail: str = Field(default=SIGN_UP_ACCEPTED)


class VerificationCode(BaseModel):
    """An emailed code, as typed (case, spaces and dashes do not matter)."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=64, examples=["K7QX-M2PD-9HZ4-T1BN-6WRE"])


class EmailVerified(BaseModel):
    """A code that worked: which address it confirmed."""

    email_verified: bool = True
    purpose: str = Field(
        description="`sign-up`: the account's address; `change`: a new address", examples=["sign-up"]
    )


class EmailChange(BaseModel):
    """The address to change to; it replaces the current one once a code sent to it is used."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320, examples=["ada.new@example.org"])


class EmailStatus(BaseModel):
    """The account's address and whether it is confirmed (brands get it only once it is)."""

    email: str
    verified: bool
    verified_at: datetime | None


class CodeSent(BaseModel):
    """A code is on its way."""

    detail: str


class EmailChangePending(BaseModel):
    """A change of address waiting for its code."""

    pending_email: str
    detail: str


class SessionPublic(BaseModel):
    """A new session: the bearer token (shown once) and when it expires."""

    token: str
    expires_at: datetime


def _profile_model(name: str, doc: str) -> type[BaseModel]:
    fields: dict[str, Any] = {
        spec.name: (
            spec.annotation | None,
            Field(default=None, title=spec.title, description=spec.description),
        )
        for spec in STORED_FIELDS.values()
    }
    return create_model(name, __config__=ConfigDict(extra="forbid"), __doc__=doc, **fields)


def _derived_model() -> type[BaseModel]:
    fields: dict[str, Any] = {
        spec.name: (str | None, Field(default=None, title=spec.title, description=spec.description))
        for spec in DERIVED_FIELDS.values()
    }
    return create_model(
        "DerivedFields", __doc__="Fields computed from stored ones on every read; never stored.", **fields
    )


if TYPE_CHECKING:
    ProfileFields = BaseModel
    DerivedFields = BaseModel
else:
    ProfileFields = _profile_model(
        "ProfileFields",
        "Profile fields. In PUT every field to keep must be given; in PATCH null removes a field.",
    )
    DerivedFields = _derived_model()


class ProfilePublic(BaseModel):
    """The customer's profile: stored fields and derived ones."""

    fields: ProfileFields
    derived: DerivedFields
