"""Writing mail: `Mail.enqueue` renders a template and puts the message in the outbox, in the caller's
transaction, so a message exists exactly when the event that causes it commits.

What the message says and to whom is personal data: it is sealed under the customer's data key as
the vault secret `mail:<id>` (`Vault.put_secret`); the outbox row holds only ids, the template's
name and the delivery state. The worker (`broker.mail.delivery`) opens it to send it and drops the
secret once the message is delivered or has failed for good.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlmodel import Session

from broker.mail.models import MailMessage
from broker.mail.rendering import Rendered, Templates
from vault.profile import Vault

__all__ = ["Mail"]


@dataclass(frozen=True, slots=True)
class Mail:
    """The outbox's writing side: `runtime.mail`."""

    vault: Vault
    templates: Templates
    base_url: str
    clock: Callable[[], datetime]

    def enqueue(
        self, session: Session, customer_id: UUID, *, to: str, template: str, context: Mapping[str, Any]
    ) -> UUID:
        """Render `template` with `context` (plus `base_url`) for `to` and queue it for the customer
        `customer_id` (whose account and vault must exist in `session`); returns the message id.

        Nothing is sent before the caller's transaction commits, and nothing if it rolls back.
        """
        rendered = self.render(template, context)
        now = self.clock()
        message = MailMessage(customer_id=customer_id, template=template, created_at=now, next_attempt_at=now)
        session.add(message)
        session.flush()
        sealed = {"to": to, "subject": rendered.subject, "text": rendered.text, "html": rendered.html}
        self.vault.put_secret(session, customer_id, message.secret_label, json.dumps(sealed))
        return message.id

    def render(self, template: str, context: Mapping[str, Any]) -> Rendered:
        """`template` rendered with `context` plus `base_url`: for the one message that cannot wait in
        the outbox (the deletion receipt, sent as the account goes: `broker.usecases.account_deletion`)."""
        return self.templates.render(template, {**context, "base_url": self.base_url})
