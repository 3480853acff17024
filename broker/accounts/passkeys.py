"""Passkeys (WebAuthn Level 3) with the `webauthn` package: register, name, remove, verify.

The relying-party id and origin come from the settings' public URL. Registration requires a
discoverable credential (a passkey: the authenticator remembers the account, so login needs no
email) and user verification (a PIN or biometric: a passkey is then a second factor on its own).
Every ceremony's challenge comes from `Challenges` (single use, short-lived, bound to its purpose,
stored hashed); signature, origin, RP id, flags and the signature counter are checked by the
library (`verify_*_response`). The user handle is the customer's id (random, no personal data).
A passkey's name is personal (\"Ada's phone\"): it is sealed in the vault as `passkey-name:<id>`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlmodel import Session, col, select
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from broker.accounts.challenges import Challenges, IssuedChallenge, Purpose
from broker.accounts.factor_models import Passkey
from broker.errors import NotFound, PasskeyExists, PasskeyRefused, ValidationFailed
from vault.held import forget_passkey
from vault.profile import Vault

TIMEOUT_MS = 5 * 60 * 1000


@dataclass(frozen=True, slots=True)
class PasskeyView:
    """A passkey as its owner sees it."""

    id: UUID
    name: str
    created_at: datetime
    last_used_at: datetime | None


def _name_label(passkey_id: UUID) -> str:
    return f"passkey-name:{passkey_id}"


def _refused(detail: str) -> PasskeyRefused:
    return PasskeyRefused(detail)


def parse_assertion(credential: dict[str, Any]) -> tuple[AuthenticationCredential, bytes]:
    """The parsed assertion and the challenge it signed (from its clientDataJSON); 422 when malformed."""
    try:
        parsed = parse_authentication_credential_json(credential)
        challenge = parse_client_data_json(bytes(parsed.response.client_data_json)).challenge
    except (WebAuthnException, ValueError, TypeError, KeyError):
        detail = (
            "credential is not a WebAuthn assertion (PublicKeyCredential JSON from navigator.credentials.get)"
        )
        raise ValidationFailed(detail, errors=[{"pointer": "/credential", "detail": detail}]) from None
    return parsed, challenge


@dataclass(frozen=True, slots=True)
class Passkeys:
    """WebAuthn ceremonies and the customer's passkeys."""

    vault: Vault
    challenges: Challenges
    rp_id: str
    rp_name: str
    origin: str
    clock: Callable[[], datetime]

    def _rows(self, session: Session, customer_id: UUID) -> list[Passkey]:
        query = select(Passkey).where(Passkey.customer_id == customer_id).order_by(col(Passkey.created_at))
        return list(session.exec(query))

    def count(self, session: Session, customer_id: UUID) -> int:
        """How many passkeys the customer has."""
        return len(self._rows(session, customer_id))

    def registration_options(
        self, session: Session, customer_id: UUID, session_id: UUID, user_name: str
    ) -> dict[str, Any]:
        """`PublicKeyCredentialCreationOptions` (JSON form) for a new passkey of this session's customer."""
        issued = self.challenges.issue(
            session, Purpose.REGISTER, customer_id=customer_id, session_id=session_id
        )
        assert issued.challenge is not None
        options = generate_registration_options(
            rp_id=self.rp_id,
            rp_name=self.rp_name,
            user_id=customer_id.bytes,
            user_name=user_name,
            challenge=issued.challenge,
            timeout=TIMEOUT_MS,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.REQUIRED,
            ),
            exclude_credentials=[
                PublicKeyCredentialDescriptor(id=row.credential_id)
                for row in self._rows(session, customer_id)
            ],
        )
        loaded: dict[str, Any] = json.loads(options_to_json(options))
        return loaded

    def register(
        self, session: Session, customer_id: UUID, session_id: UUID, name: str, credential: dict[str, Any]
    ) -> PasskeyView:
        """Verify a new credential against its registration challenge and keep it under `name`."""
        try:
            parsed = parse_registration_credential_json(credential)
            challenge = parse_client_data_json(bytes(parsed.response.client_data_json)).challenge
        except (WebAuthnException, ValueError, TypeError, KeyError):
            detail = (
                "credential is not a WebAuthn registration "
                "(PublicKeyCredential JSON from navigator.credentials.create)"
            )
            raise ValidationFailed(detail, errors=[{"pointer": "/credential", "detail": detail}]) from None
        self.challenges.take(
            session, Purpose.REGISTER, challenge, customer_id=customer_id, session_id=session_id
        )
        try:
            verified = verify_registration_response(
                credential=parsed,
                expected_challenge=challenge,
                expected_rp_id=self.rp_id,
                expected_origin=self.origin,
                require_user_verification=True,
            )
        except WebAuthnException as exc:
            raise _refused(f"the passkey could not be verified ({exc}); try again") from None
        existing = select(Passkey.id).where(Passkey.credential_id == verified.credential_id)
        if session.exec(existing).first() is not None:
            raise PasskeyExists("this passkey is already registered")
        row = Passkey(
            customer_id=customer_id,
            credential_id=verified.credential_id,
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            created_at=self.clock(),
        )
        session.add(row)
        session.flush()
        self.vault.put_secret(session, customer_id, _name_label(row.id), name)
        return PasskeyView(row.id, name, row.created_at, None)

    def views(self, session: Session, customer_id: UUID) -> list[PasskeyView]:
        """The customer's passkeys, oldest first, with their names."""
        rows = self._rows(session, customer_id)
        names = self.vault.secrets(session, customer_id, [_name_label(row.id) for row in rows])
        return [
            PasskeyView(row.id, names.get(_name_label(row.id), "Passkey"), row.created_at, row.last_used_at)
            for row in rows
        ]

    def _owned(self, session: Session, customer_id: UUID, passkey_id: UUID) -> Passkey:
        row = session.get(Passkey, passkey_id)
        if row is None or row.customer_id != customer_id:
            raise NotFound(f"no passkey {passkey_id} on this account")
        return row

    def rename(self, session: Session, customer_id: UUID, passkey_id: UUID, name: str) -> PasskeyView:
        """Give a passkey a new name."""
        row = self._owned(session, customer_id, passkey_id)
        self.vault.put_secret(session, customer_id, _name_label(row.id), name)
        return PasskeyView(row.id, name, row.created_at, row.last_used_at)

    def remove(self, session: Session, customer_id: UUID, passkey_id: UUID) -> None:
        """Remove a passkey: it stops working at once, and no longer unlocks a vault in self-custody."""
        row = self._owned(session, customer_id, passkey_id)
        self.vault.forget_secret(session, customer_id, _name_label(row.id))
        forget_passkey(session, customer_id, row.id)
        session.delete(row)
        session.flush()

    def authentication_options(
        self, issued: IssuedChallenge, allow: list[Passkey] | None = None
    ) -> dict[str, Any]:
        """`PublicKeyCredentialRequestOptions` (JSON form) for an issued challenge; without `allow`
        the browser offers every passkey it has for this site (usernameless login)."""
        assert issued.challenge is not None
        options = generate_authentication_options(
            rp_id=self.rp_id,
            challenge=issued.challenge,
            timeout=TIMEOUT_MS,
            allow_credentials=[PublicKeyCredentialDescriptor(id=row.credential_id) for row in allow or []],
            user_verification=UserVerificationRequirement.REQUIRED,
        )
        loaded: dict[str, Any] = json.loads(options_to_json(options))
        return loaded

    def allowed(self, session: Session, customer_id: UUID) -> list[Passkey]:
        """The customer's passkeys, for `allowCredentials` when the customer is already known."""
        return self._rows(session, customer_id)

    def verify(
        self,
        session: Session,
        parsed: AuthenticationCredential,
        challenge: bytes,
        *,
        customer_id: UUID | None = None,
    ) -> Passkey:
        """Check an assertion over `challenge` (already taken) and advance the passkey's counter.

        `customer_id` limits it to that customer's passkeys; the user handle, when the browser
        sends one, must name the passkey's owner."""
        row = session.exec(select(Passkey).where(Passkey.credential_id == bytes(parsed.raw_id))).first()
        if row is None or (customer_id is not None and row.customer_id != customer_id):
            raise _refused("this passkey is not registered here; sign in another way")
        handle = parsed.response.user_handle
        if handle is not None and bytes(handle) != row.customer_id.bytes:
            raise _refused("this passkey's user handle does not match its account")
        try:
            verified = verify_authentication_response(
                credential=parsed,
                expected_challenge=challenge,
                expected_rp_id=self.rp_id,
                expected_origin=self.origin,
                credential_public_key=row.public_key,
                credential_current_sign_count=row.sign_count,
                require_user_verification=True,
            )
        except WebAuthnException as exc:
            raise _refused(f"the passkey's answer could not be verified ({exc})") from None
        row.sign_count, row.last_used_at = verified.new_sign_count, self.clock()
        session.add(row)
        session.flush()
        return row
