"""TOTP as a second factor (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps), with `pyotp`.

The shared secret is sealed in the vault (the secret `totp`, under the customer's data key) and is
shown to the customer once, at enrolment, as an otpauth URI, a QR code drawn here as SVG (`segno`;
no outside service sees the secret) and the base32 text for typing in. Enrolment counts only after a
first correct code. A code is accepted for the current step and one either side (clock drift), and
only for a step newer than the last one accepted: the same code cannot be used twice.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import pyotp
import segno
from sqlmodel import Session

from broker.accounts.factor_models import TotpFactor
from broker.errors import NotFound, TotpEnrolled, ValidationFailed
from vault.profile import Vault

SECRET_LABEL = "totp"  # noqa: S105 - the vault label of the secret, not a secret
STEP_SECONDS = 30
DRIFT_STEPS = 1


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    """What the customer needs to set up an authenticator app; shown once."""

    secret: str
    otpauth_uri: str
    qr_svg: str


class CodeRefused(Exception):
    """A TOTP code was wrong, or right but already used; `detail` says which, for the customer."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def normalise_code(code: str) -> str:
    """Digits only: people type `123 456` or `123-456`."""
    return "".join(ch for ch in code if ch not in " -")


@dataclass(frozen=True, slots=True)
class Totp:
    """Enrol, confirm, check and remove a customer's TOTP authenticator."""

    vault: Vault
    issuer: str
    clock: Callable[[], datetime]

    def factor(self, session: Session, customer_id: UUID) -> TotpFactor | None:
        """The customer's TOTP row, confirmed or not."""
        return session.get(TotpFactor, customer_id)

    def enabled(self, session: Session, customer_id: UUID) -> bool:
        """True when a confirmed authenticator is enrolled."""
        row = self.factor(session, customer_id)
        return row is not None and row.confirmed_at is not None

    def start(self, session: Session, customer_id: UUID, account_name: str) -> TotpEnrolment:
        """A new secret (replacing an unconfirmed one); 409 when an authenticator is already enrolled."""
        row = self.factor(session, customer_id)
        if row is not None and row.confirmed_at is not None:
            raise TotpEnrolled("an authenticator app is already set up; remove it first to set up another")
        secret = pyotp.random_base32()
        self.vault.put_secret(session, customer_id, SECRET_LABEL, secret)
        row = row or TotpFactor(customer_id=customer_id, created_at=self.clock())
        row.created_at, row.last_step = self.clock(), 0
        session.add(row)
        session.flush()
        uri = pyotp.TOTP(secret).provisioning_uri(name=account_name, issuer_name=self.issuer)
        qr = segno.make(uri, error="m")
        return TotpEnrolment(secret=secret, otpauth_uri=uri, qr_svg=qr.svg_inline(scale=4, border=4))

    def confirm(self, session: Session, customer_id: UUID, code: str) -> None:
        """Finish enrolment with a first code from the app; a wrong one is a 422 on `code`."""
        row = self.factor(session, customer_id)
        if row is None or row.confirmed_at is not None:
            raise NotFound("there is no authenticator app waiting to be confirmed; start the set-up first")
        try:
            self._accept(session, row, code)
        except CodeRefused as exc:
            raise ValidationFailed(exc.detail, errors=[{"pointer": "/code", "detail": exc.detail}]) from None
        row.confirmed_at = self.clock()
        session.add(row)
        session.flush()

    def check(self, session: Session, customer_id: UUID, code: str) -> None:
        """Accept a code from the enrolled authenticator, or raise CodeRefused. The row is locked, so one
        code sent twice at once is accepted once (its step is kept as the last one used)."""
        row = session.get(TotpFactor, customer_id, with_for_update=True)
        if row is None or row.confirmed_at is None:
            raise CodeRefused("no authenticator app is set up for this account; use another method")
        self._accept(session, row, code)

    def _accept(self, session: Session, row: TotpFactor, code: str) -> None:
        code = normalise_code(code)
        if len(code) != 6 or not code.isdigit():
            raise CodeRefused("the code must be the 6 digits your authenticator app shows")
        secret = self.vault.secrets(session, row.customer_id, [SECRET_LABEL])[SECRET_LABEL]
        totp = pyotp.TOTP(secret)
        now_step = int(self.clock().timestamp()) // STEP_SECONDS
        for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
            if hmac.compare_digest(totp.generate_otp(step), code):
                if step <= row.last_step:
                    raise CodeRefused("this code was already used; wait for the next one")
                row.last_step = step
                session.add(row)
                session.flush()
                return
        raise CodeRefused("the code is wrong or has expired; check the time on your device and try again")

    def remove(self, session: Session, customer_id: UUID) -> bool:
        """Remove the authenticator and its secret; False when there was none."""
        row = self.factor(session, customer_id)
        if row is None:
            return False
        self.vault.forget_secret(session, customer_id, SECRET_LABEL)
        session.delete(row)
        session.flush()
        return True
