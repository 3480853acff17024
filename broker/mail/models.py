"""The mail outbox table: one row per message owed to a customer's address.

A row holds no personal data: the recipient, subject and bodies are sealed under the customer's data
key as the vault secret `mail:<id>` (see `broker.mail.outbox`), so deleting the account (which shreds
the vault and, through the foreign key, deletes these rows) makes pending mail unreadable and gone.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID, uuid4

from sqlalchemy import Column, ForeignKey, Index
from sqlmodel import Field, SQLModel

from vault.sqltypes import UTCDateTime, str_enum


class MailStatus(StrEnum):
    """`pending` until the transport accepts it (`delivered`) or the retries run out (`failed`)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class MailMessage(SQLModel, table=True):
    """One message in the outbox: whose it is, which template made it, when to try next."""

    __tablename__ = "mail_message"
    __table_args__ = (Index("ix_mail_message_due", "status", "next_attempt_at"),)

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    customer_id: UUID = Field(
        sa_column=Column(ForeignKey("customer.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    template: str = Field(max_length=64)
    status: MailStatus = Field(
        default=MailStatus.PENDING, sa_column=Column(str_enum(MailStatus), nullable=False)
    )
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    next_attempt_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))

    @property
    def secret_label(self) -> str:
        """The vault secret that holds this message's recipient and bodies."""
        return secret_label(self.id)


def secret_label(message_id: UUID) -> str:
    """The vault secret label of a message (`mail:<hex id>`)."""
    return f"mail:{message_id.hex}"
