"""Self-custody: the customer moves the key of their profile into their own hands, and back.

The browser does the cryptography (`vault.held` documents the formats); the broker keeps what it
sends, checks its shape, and keeps the promises the rest of Consentry makes in either custody:

- No data is lost on the way: moving to self-custody takes a ciphertext of every stored field (none
  missing, none made up), moving back takes every held field's value.
- Every live grant stays readable by its brand: in self-custody each is sealed to the brand
  (`broker.consent.sealed`). A move to self-custody seals them all, an edit of the profile re-seals
  the grants it changes (and only those: a brand is told of a change it sees), narrowing a grant
  re-seals it. A brand without an encryption key cannot receive a sealed grant, so a customer with a
  live grant to one must end it first (`GrantsUnsealable`, naming them).
- Every move is in the audit log (`custody.changed`), as is every sealing (`grant.sealed`).

What the broker must read itself stays in its custody: the account's email address (`SERVER_HELD`),
and what is sealed as the vault's secrets (preferences, voucher codes, dispute texts, passkey names).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlmodel import Session, col, select

from broker.accounts.factor_models import Passkey
from broker.accounts.models import Brand, Customer
from broker.audit.entries import Actor, Kind
from broker.audit.group_commit import isolated
from broker.audit.log import AuditLog
from broker.consent.grants import Grants, effective_status
from broker.consent.models import Grant, GrantStatus, Offer
from broker.consent.sealed import MAX_JWE, SealedCopies, purposes_of
from broker.errors import GrantsUnsealable, ValidationFailed
from broker.oauth.context import OAuthServices
from vault.fields import DERIVED_FIELDS
from vault.held import PRF_INPUT, HeldFields, Unlock
from vault.profile import Vault

__all__ = ["Custody", "Seal", "SealIn", "seals_of"]


@dataclass(frozen=True, slots=True)
class Seal:
    """A grant sealed anew by the browser: its copies ({purpose: compact JWE}) as `version`."""

    version: int
    copies: Mapping[str, str]


_Purpose = Annotated[str, StringConstraints(min_length=1, max_length=64)]
_Jwe = Annotated[str, StringConstraints(min_length=1, max_length=MAX_JWE)]


class SealIn(BaseModel):
    """A grant sealed anew to its brand: one compact JWE per purpose of the grant."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    version: int = Field(ge=1, le=2**31 - 1)
    """The copy's version: the grant's `sealed_version` plus one."""
    copies: dict[_Purpose, _Jwe] = Field(min_length=1, max_length=16)
    """{purpose: compact JWE}: ECDH-ES and A256GCM to one of the brand's encryption keys (its `kid`),
    `cty` consentry-grant+json; see the README's "Sealed profiles" for the plaintext."""

    def seal(self) -> Seal:
        """What the use case takes."""
        return Seal(version=self.version, copies=dict(self.copies))


def seals_of(grants: dict[UUID, SealIn]) -> dict[UUID, Seal]:
    return {grant_id: seal.seal() for grant_id, seal in grants.items()}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def affected_by(changed: set[str]) -> set[str]:
    """The fields a change of `changed` changes: those, and the derived fields computed from them."""
    return changed | {name for name, spec in DERIVED_FIELDS.items() if changed & set(spec.derived_from)}


@dataclass(frozen=True, slots=True)
class Custody:
    """Move a profile between the broker's custody and the customer's, and keep its grants sealed."""

    vault: Vault
    held: HeldFields
    grants: Grants
    sealed: SealedCopies
    audit: AuditLog
    oauth: OAuthServices
    clock: Callable[[], datetime]
    rp_id: str  # the passkeys' relying party: the browser asks them for the vault's PRF under it

    def live_grants(self, session: Session, customer_id: UUID) -> list[tuple[Grant, Brand]]:
        """The customer's live grants (active or suspended, not past their expiry), oldest first, with
        their brands."""
        now = self.clock()
        rows = session.exec(
            select(Grant)
            .where(
                Grant.customer_id == customer_id,
                col(Grant.status).in_([GrantStatus.ACTIVE, GrantStatus.SUSPENDED]),
            )
            .order_by(col(Grant.created_at), col(Grant.id))
        ).all()
        live = [
            grant
            for grant in rows
            if effective_status(grant, now) in (GrantStatus.ACTIVE, GrantStatus.SUSPENDED)
        ]
        return self.grants.with_brands(session, live)

    def view(self, session: Session, customer_id: UUID) -> dict[str, Any]:
        """What the customer's browser needs, in either custody: the custody, the held vault (key
        version, unlocks, ciphertexts), the passkeys that can unlock it, and each live grant with what
        sealing it takes (the brand's encryption keys, the pairwise subject, the purposes and their
        fields, the version of its copy)."""
        held = self.vault.is_held(session, customer_id)
        passkeys = session.exec(
            select(Passkey).where(Passkey.customer_id == customer_id).order_by(col(Passkey.created_at))
        ).all()
        unlocking = self.held.unlocking_passkeys(session, customer_id) if held else set()
        grants = self.live_grants(session, customer_id)
        current = self.sealed.current(session, grants) if held else set()
        state = self.held.state(session, customer_id) if held else None
        email = self.vault.read_stored(session, customer_id, ["email"]).get("email")
        customer = session.get(Customer, customer_id)
        return {
            "custody": "customer" if held else "broker",
            "customer_id": customer_id,
            "issuer": self.oauth.issuer,
            "prf_input": b64(PRF_INPUT),
            "rp_id": self.rp_id,
            "email": email,
            "email_verified": customer is not None and customer.email_verified_at is not None,
            "passkeys": [
                {"id": key.id, "credential_id": b64(key.credential_id), "unlocks": key.id in unlocking}
                for key in passkeys
            ],
            "held": None
            if state is None
            else {
                "data_key_version": state.dek_version,
                "unlocks": [
                    {
                        "id": unlock.id,
                        "kind": unlock.kind,
                        "passkey_id": unlock.passkey_id,
                        "salt": b64(unlock.salt),
                        "wrapped_key": b64(unlock.wrapped_dek),
                        "created_at": unlock.created_at,
                    }
                    for unlock in state.unlocks
                ],
                "fields": {name: b64(blob) for name, blob in state.fields.items()},
                "field_updated_at": state.updated_at,
            },
            "grants": [
                {
                    "grant_id": grant.id,
                    "client_id": brand.client_id,
                    "brand_name": brand.name,
                    "sub": self.oauth.pairwise_subject(brand.id, customer_id),
                    "purposes": purposes_of(grant),
                    "keys": (brand.encryption_jwks() or {"keys": []})["keys"],
                    "sealed_version": grant.sealed_version,
                    "sealed": grant.id in current,
                }
                for grant, brand in grants
            ],
        }

    def hold(
        self,
        session: Session,
        customer_id: UUID,
        *,
        fields: Mapping[str, bytes],
        unlocks: list[Unlock],
        seals: Mapping[UUID, Seal],
    ) -> None:
        """Move the profile to the customer's key (`HeldFields.hold`) and store a sealed copy of every
        live grant (`seals`, exactly one per live grant, each its first version or one more)."""
        grants = self.live_grants(session, customer_id)
        unsealable = [(grant, brand) for grant, brand in grants if brand.encryption_jwks() is None]
        if unsealable:
            raise GrantsUnsealable(
                "these brands registered no encryption key, so they cannot receive data sealed to them: "
                f"{', '.join(sorted({brand.name for _, brand in unsealable}))}; end these grants first",
                errors=[
                    {"pointer": f"/grants/{grant.id}", "detail": f"{brand.name} cannot receive sealed data"}
                    for grant, brand in unsealable
                ],
            )
        self._check_passkeys(
            session, customer_id, [u.passkey_id for u in unlocks if u.passkey_id is not None]
        )
        self._check_seals(grants, seals, pointer="/grants")
        self.held.hold(session, customer_id, fields=fields, unlocks=unlocks)
        self.audit.record(
            session, Kind.CUSTODY_CHANGED, actor=Actor.CUSTOMER, customer_id=customer_id, custody="customer"
        )
        self._store(session, grants, seals)

    def release(self, session: Session, customer_id: UUID, values: Mapping[str, Any]) -> None:
        """Back to the broker's custody with the held fields' values as the browser opened them; the
        sealed copies go (the brands read plainly again), each with its entry."""
        self.held.release(session, customer_id, values)
        self.audit.record(
            session, Kind.CUSTODY_CHANGED, actor=Actor.CUSTOMER, customer_id=customer_id, custody="broker"
        )
        for grant, _ in self.live_grants(session, customer_id):
            self.sealed.delete(session, grant, reason="custody-returned", actor=Actor.CUSTOMER)

    def update(
        self,
        session: Session,
        customer_id: UUID,
        fields: Mapping[str, bytes | None],
        seals: Mapping[UUID, Seal],
    ) -> list[str]:
        """Store the fields the browser sealed anew (None removes one) with a new copy of exactly the
        live grants the change reaches (a granted field changed, or one derived from it). Returns the
        names changed."""
        if not fields:
            raise ValidationFailed.at("/fields", "name at least one field to change")
        reached = affected_by(set(fields))
        grants = [(g, b) for g, b in self.live_grants(session, customer_id) if reached & set(g.fields)]
        self._check_seals(grants, seals, pointer="/grants")
        changed = self.held.update(session, customer_id, fields)
        self._store(session, grants, seals)
        return changed

    def seal(self, session: Session, customer_id: UUID, seals: Mapping[UUID, Seal]) -> None:
        """Seal some live grants anew without a change of the profile (a grant whose copy is missing, or
        after the brand rotated its keys)."""
        if not self.vault.is_held(session, customer_id):
            self.held.state(session, customer_id)  # raises CustodyConflict (held=False)
        live = {grant.id: (grant, brand) for grant, brand in self.live_grants(session, customer_id)}
        unknown = [grant_id for grant_id in seals if grant_id not in live]
        if unknown or not seals:
            raise ValidationFailed.at("/grants", "name one or more of your live grants to seal")
        chosen = [live[grant_id] for grant_id in seals]
        self._check_seals(chosen, seals, pointer="/grants")
        self._store(session, chosen, seals)

    def narrow(
        self,
        session: Session,
        customer_id: UUID,
        grant_id: UUID,
        *,
        fields: Sequence[str] | None,
        expires_at: datetime | None,
        seal: Seal | None,
    ) -> Grant:
        """The customer narrows a grant (`Grants.narrow`); in self-custody, dropping fields takes the
        grant sealed anew without them (`seal`), and the old copy goes."""
        held = self.vault.is_held(session, customer_id)
        grant = self.grants.for_customer(session, customer_id, grant_id)
        drops = fields is not None and set(fields) != set(grant.fields)
        if not held and seal is not None:
            raise ValidationFailed.at("/sealed", "only a self-custody grant is sealed: leave sealed out")
        if held and drops and seal is None:
            raise ValidationFailed.at(
                "/sealed", "your profile is in self-custody: seal the narrowed grant to its brand (sealed)"
            )
        offer = session.get(Offer, grant.offer_id)
        assert offer is not None
        with isolated(session):  # narrowed and sealed anew, or neither (a caller may show the refusal)
            narrowed = self.grants.narrow(
                session, grant, offer, fields=fields, expires_at=expires_at, by=Actor.CUSTOMER
            )
            if seal is not None:
                brand = session.get(Brand, narrowed.brand_id)
                assert brand is not None
                self.sealed.store(
                    session, narrowed, brand, seal.copies, version=seal.version, pointer="/sealed"
                )
        return narrowed

    def sealing(
        self, session: Session, customer_id: UUID, offer: Offer, names: Sequence[str]
    ) -> dict[str, Any]:
        """What a self-custody customer's browser needs to seal the grant a consent form makes of
        `offer` (asking for `names`): the fields asked for and required, the purpose (or each purpose
        with its fields), the brand's client id and encryption keys (none: it cannot receive sealed
        data), and the customer's pairwise subject there (`static/held.js`)."""
        brand = session.get(Brand, offer.brand_id)
        assert brand is not None  # an offer's brand outlives it
        return {
            "fields": list(names),
            "required": [name for name in offer.required_fields if name in names],
            "purpose": offer.purpose,
            "purposes": [
                {"slug": str(item["purpose"]), "fields": [name for name in item["fields"] if name in names]}
                for item in offer.purposes or []
            ],
            "client_id": brand.client_id,
            "sub": self.oauth.pairwise_subject(brand.id, customer_id),
            "keys": (brand.encryption_jwks() or {"keys": []})["keys"],
        }

    def seal_new(self, session: Session, grant: Grant, seal: Seal) -> None:
        """A grant just made by a customer in self-custody, sealed to its brand by their browser at
        consent (its first version); `ValidationFailed` (pointer `/sealed`) when the copies do not fit."""
        brand = session.get(Brand, grant.brand_id)
        assert brand is not None
        self.sealed.store(session, grant, brand, seal.copies, version=seal.version, pointer="/sealed")

    def add_unlock(self, session: Session, customer_id: UUID, unlock: Unlock) -> UUID:
        """Another passkey unlocks the vault, or a new recovery key replaces the old one."""
        if unlock.passkey_id is not None:
            self._check_passkeys(session, customer_id, [unlock.passkey_id])
        return self.held.add_unlock(session, customer_id, unlock)

    def _check_passkeys(self, session: Session, customer_id: UUID, passkey_ids: list[UUID]) -> None:
        if not passkey_ids:
            return
        owned = set(
            session.exec(
                select(Passkey.id).where(Passkey.customer_id == customer_id, col(Passkey.id).in_(passkey_ids))
            ).all()
        )
        missing = [passkey_id for passkey_id in passkey_ids if passkey_id not in owned]
        if missing:
            raise ValidationFailed(
                "an unlock names a passkey that is not one of yours",
                errors=[
                    {"pointer": "/unlocks", "detail": f"no passkey {passkey_id} on your account"}
                    for passkey_id in missing
                ],
            )

    def _check_seals(
        self, grants: Sequence[tuple[Grant, Brand]], seals: Mapping[UUID, Seal], *, pointer: str
    ) -> None:
        """`seals` names exactly `grants`; each copy's shape and version are checked as it is stored."""
        wanted = {grant.id for grant, _ in grants}
        missing, extra = wanted - set(seals), set(seals) - wanted
        errors = [
            {
                "pointer": f"{pointer}/{grant_id}",
                "detail": "this live grant must be sealed anew: its fields change",
            }
            for grant_id in sorted(missing, key=str)
        ]
        errors += [
            {
                "pointer": f"{pointer}/{grant_id}",
                "detail": "not a live grant this change reaches: leave it out",
            }
            for grant_id in sorted(extra, key=str)
        ]
        if errors:
            raise ValidationFailed("; ".join(e["detail"] for e in errors), errors=errors)

    def _store(
        self, session: Session, grants: Sequence[tuple[Grant, Brand]], seals: Mapping[UUID, Seal]
    ) -> None:
        for grant, brand in grants:
            seal = seals[grant.id]
            self.sealed.store(
                session, grant, brand, seal.copies, version=seal.version, pointer=f"/grants/{grant.id}"
            )
