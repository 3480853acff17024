"""Request and response shapes of the accounts and customer API."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

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


class CustomerPublic(BaseModel):
    """A customer account as the API shows it."""

    id: UUID
    created_at: datetime


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
