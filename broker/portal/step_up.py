"""Step-up in the portal: what a page needs to ask for a fresh sign-in inline.

Pages with sensitive actions (the account page, the security page) include `_reauthenticate.html`
with this context; the form posts to /portal/reauthenticate and comes back to the page.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from broker.accounts.models import CustomerSession
from broker.errors import Forbidden
from broker.runtime import Runtime

REAUTH_MESSAGES = {
    "failed": "That did not confirm it is you; check what you typed and try again.",
    "locked": "Too many failed attempts from here; wait a few minutes, or use a passkey.",
    "needed": "Confirm it is you first (below), then try again.",
}


def is_fresh(db: Session, runtime: Runtime, session: CustomerSession) -> bool:
    """True when the session may do sensitive things now."""
    try:
        runtime.signin.require_fresh(db, session)
    except Forbidden:
        return False
    return True


def step_up_context(
    db: Session, runtime: Runtime, session: CustomerSession, here: str, reauth: str | None = None
) -> dict[str, Any]:
    """The template context of the inline re-authentication box."""
    signin = runtime.signin
    return {
        "fresh": is_fresh(db, runtime, session),
        "here": here,
        "reauth_message": REAUTH_MESSAGES.get(reauth or ""),
        "enrolled": signin.has_second_factor(db, session.customer_id),
        "totp_enabled": signin.totp.enabled(db, session.customer_id),
        "has_passkeys": signin.passkeys.count(db, session.customer_id) > 0,
        "step_up_minutes": int(signin.step_up_max_age.total_seconds() // 60),
    }
