"""Security mail: the owner hears of the important changes to their account at its address, in the
transaction that records them (`SecurityActivity` listener), so a message exists exactly when the
change committed.

    password.changed       "your password was changed"           (someone with a session did it)
    password.reset         "your password was reset"             (someone with the mailbox did it)
    sign_in.new_device     "a new sign-in to your account"       (with the coarse device, never an IP)
    factor.added/removed   "a sign-in method was added/removed"
    second_factor.failed   "someone has your password"           (the right password, a wrong second
                                                                  factor; once an hour at most)

Each says what to do if it was not the owner. Other entries stay in the activity list only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session

from broker.accounts.activity import ActivityKind, SecurityActivity
from broker.accounts.models import SecurityEvent
from broker.mail.outbox import Mail
from vault.profile import Vault

__all__ = ["TEMPLATES", "SecurityMail"]

TEMPLATES = {
    ActivityKind.PASSWORD_CHANGED: "password_changed",
    ActivityKind.PASSWORD_RESET: "password_reset_done",
    ActivityKind.NEW_DEVICE: "new_device_sign_in",
    ActivityKind.FACTOR_ADDED: "factor_added",
    ActivityKind.FACTOR_REMOVED: "factor_removed",
    ActivityKind.SECOND_FACTOR_FAILED: "second_factor_failed",
}
# Kinds an attacker can repeat at will: the owner hears of the first in an hour, not of each.
HOURLY = {ActivityKind.SECOND_FACTOR_FAILED}


@dataclass(frozen=True, slots=True)
class SecurityMail:
    """Queues a message to the account's address for the important security entries."""

    vault: Vault
    mail: Mail
    activity: SecurityActivity

    def on_activity(self, session: Session, event: SecurityEvent) -> None:
        """Queue the message for `event`, if it is one the owner must hear of."""
        kind = ActivityKind(event.kind)
        template = TEMPLATES.get(kind)
        if template is None:
            return
        an_hour_ago = event.created_at - timedelta(hours=1)
        if kind in HOURLY and self.activity.count_since(session, event.customer_id, kind, an_hour_ago) > 1:
            return
        email = self.vault.read_stored(session, event.customer_id, ["email"]).get("email")
        if not isinstance(email, str):
            return  # the account is being deleted: nobody to tell
        context = {
            "device": event.device or "an unknown device",
            "at": f"{event.created_at:%Y-%m-%d %H:%M} UTC",
            "what": event.detail or "a sign-in method",
        }
        self.mail.enqueue(session, event.customer_id, to=email, template=template, context=context)
