"""Sealed copies: a self-custody grant's fields, sealed by the customer's browser to the brand.

A customer in self-custody (`vault.held`) holds the only key to their profile, so the broker cannot
answer a brand's read with the fields. The browser answers for it ahead of time: while the customer is
present (at consent, on each edit of the profile, on narrowing) it seals each live grant's fields, one
compact JWE per purpose of the grant, to an encryption key the brand registered (`jwks`, `use: enc`),
and the broker keeps the newest. A read is answered with that JWE after the usual checks; the brand's
SDK opens it (`clients.brand.sealed` documents the plaintext and what it is bound to).

The broker cannot look inside. It checks what it can: the JWE is compact, its protected header says
`alg` ECDH-ES, `enc` A256GCM, `cty` "consentry-grant+json", names with `kid` one of the brand's
encryption keys (and carries an ephemeral key on that key's curve), has no compression and no critical
extensions, and the copies of one sealing cover exactly the grant's purposes, one version more than
the last. Deleted when the grant ends, with an audit entry (`grant.seal_deleted`) that says why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from joserfc.errors import JoseError
from joserfc.jwe import (  # type: ignore[attr-defined]  # extract_compact: public, not in its __all__
    JWERegistry,
    extract_compact,
)
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, delete, select, update

from broker.accounts.models import Brand
from broker.audit.entries import Actor, Kind
from broker.audit.log import AuditLog
from broker.consent.models import Grant, GrantStatus, SealedCopy
from broker.consent.purposes import granted_purposes
from broker.errors import ValidationFailed

__all__ = ["CONTENT_TYPE", "MAX_JWE", "SealedCopies", "check_jwe", "purposes_of"]

CONTENT_TYPE = "consentry-grant+json"
ALGORITHM, ENCRYPTION = "ECDH-ES", "A256GCM"
MAX_JWE = 32_768  # a whole profile, base64url, is a few KiB
_REGISTRY = JWERegistry(algorithms=[ALGORITHM, ENCRYPTION])


def purposes_of(grant: Grant) -> dict[str, list[str]]:
    """The grant's purposes and the fields that go with each: one sealed copy each."""
    return granted_purposes(grant.purpose, grant.fields, grant.purpose_fields)


def check_jwe(brand: Brand, jwe: str, *, pointer: str) -> str:
    """The `kid` of a sealed copy whose shape is right for `brand` (see the module); `ValidationFailed`
    at `pointer` saying what is wrong otherwise."""

    def refuse(detail: str) -> ValidationFailed:
        return ValidationFailed.at(pointer, detail)

    if len(jwe) > MAX_JWE or not jwe.isascii():
        raise refuse(f"a sealed copy is a compact JWE of at most {MAX_JWE} characters")
    try:
        parsed = extract_compact(jwe.encode(), _REGISTRY)
    except (JoseError, ValueError, TypeError):
        raise refuse("not a compact JWE (five base64url parts, a JSON protected header)") from None
    header: Mapping[str, Any] = parsed.protected
    if not isinstance(header, Mapping):  # JSON, but not an object: joserfc leaves that to us
        raise refuse("a sealed copy's protected header is a JSON object")
    if header.get("alg") != ALGORITHM or header.get("enc") != ENCRYPTION:
        raise refuse(f"a sealed copy is encrypted with alg {ALGORITHM} and enc {ENCRYPTION}")
    if header.get("cty") != CONTENT_TYPE:
        raise refuse(f"a sealed copy's cty is {CONTENT_TYPE}")
    if "zip" in header or "crit" in header:
        raise refuse("a sealed copy is neither compressed nor carries critical extensions")
    keys = {key.get("kid"): key for key in (brand.encryption_jwks() or {"keys": []})["keys"]}
    kid = header.get("kid")
    if not isinstance(kid, str) or kid not in keys:
        known = (
            ", ".join(sorted(k for k in keys if isinstance(k, str)))
            or "none: the brand has no encryption key"
        )
        raise refuse(f"kid must name one of the brand's encryption keys ({known})")
    epk, key = header.get("epk"), keys[kid]
    if not isinstance(epk, dict) or (epk.get("kty"), epk.get("crv")) != (key.get("kty"), key.get("crv")):
        raise refuse("epk must be an ephemeral public key on the curve of the brand's key")
    if parsed.recipient is None or parsed.recipient.encrypted_key:
        raise refuse("ECDH-ES agrees the key directly: the encrypted key part is empty")
    if len(parsed.bytes_segments["iv"]) != 12 or len(parsed.bytes_segments["tag"]) != 16:
        raise refuse("A256GCM takes a 96-bit iv and a 128-bit tag")
    return kid


@dataclass(frozen=True, slots=True)
class SealedCopies:
    """Store, find and delete the grants' sealed copies; each change is in the audit log."""

    audit: AuditLog
    clock: Callable[[], datetime]

    def store(
        self,
        session: Session,
        grant: Grant,
        brand: Brand,
        copies: Mapping[str, str],
        *,
        version: int,
        pointer: str,
        actor: Actor = Actor.CUSTOMER,
    ) -> None:
        """Replace the grant's copies with `copies` ({purpose: JWE}, one per purpose of the grant) as
        `version`, which must be one more than the grant's last (`Grant.sealed_version`; 1 for the
        first)."""
        expected = grant.sealed_version + 1
        if version != expected:
            raise ValidationFailed.at(
                f"{pointer}/version",
                f"the grant's sealed copy is at version {expected - 1}: seal version {expected}",
            )
        wanted = purposes_of(grant)
        if set(copies) != set(wanted):
            raise ValidationFailed.at(
                f"{pointer}/copies",
                f"one sealed copy for each purpose of the grant: {', '.join(sorted(wanted))}",
            )
        kids = {
            purpose: check_jwe(brand, jwe, pointer=f"{pointer}/copies/{purpose}")
            for purpose, jwe in copies.items()
        }
        now = self.clock()
        # The version moves on only from the one read above, and only while the grant is live: an update
        # that waits for a concurrent narrowing, sealing or ending (its row lock) then finds nothing to
        # update, and this sealing is refused rather than putting back fields the grant no longer has.
        moved = session.exec(
            update(Grant)
            .where(
                col(Grant.id) == grant.id,
                col(Grant.sealed_version) == version - 1,
                col(Grant.status).in_([GrantStatus.ACTIVE, GrantStatus.SUSPENDED]),
                col(Grant.expires_at) > now,
            )
            .values(sealed_version=version)
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount != 1:
            raise ValidationFailed.at(
                f"{pointer}/version",
                "the grant changed meanwhile (sealed again, narrowed or ended): reload it and seal it again",
            )
        set_committed_value(grant, "sealed_version", version)
        session.exec(delete(SealedCopy).where(col(SealedCopy.grant_id) == grant.id))
        for purpose, jwe in copies.items():
            session.add(
                SealedCopy(
                    grant_id=grant.id,
                    purpose=purpose,
                    version=version,
                    kid=kids[purpose],
                    jwe=jwe,
                    stored_at=now,
                )
            )
        session.flush()
        self.audit.record(
            session,
            Kind.GRANT_SEALED,
            actor=actor,
            customer_id=grant.customer_id,
            brand_id=grant.brand_id,
            grant=grant.id,
            version=str(version),
            purposes=purposes_of(grant),
        )

    def current(self, session: Session, grants: Sequence[tuple[Grant, Brand]]) -> set[UUID]:
        """The grants among these whose copies are all there (one per purpose) and sealed to a key
        their brand still has: the others need sealing anew."""
        if not grants:
            return set()
        rows = session.exec(
            select(SealedCopy.grant_id, SealedCopy.purpose, SealedCopy.kid).where(
                col(SealedCopy.grant_id).in_([grant.id for grant, _ in grants])
            )
        ).all()
        found: dict[UUID, dict[str, str]] = {}
        for grant_id, purpose, kid in rows:
            found.setdefault(grant_id, {})[purpose] = kid
        current = set()
        for grant, brand in grants:
            copies = found.get(grant.id, {})
            if set(copies) == set(purposes_of(grant)) and set(copies.values()) <= brand.encryption_kids():
                current.add(grant.id)
        return current

    def for_read(self, session: Session, grant_id: UUID, purpose: str) -> SealedCopy | None:
        """The copy a read of the grant for `purpose` is answered with, if there is one."""
        return session.get(SealedCopy, (grant_id, purpose))

    def delete(self, session: Session, grant: Grant, *, reason: str, actor: Actor = Actor.BROKER) -> bool:
        """Delete the grant's copies (the grant ended, or the profile went back to the broker's custody),
        with an entry saying so; nothing (and no entry) when it has none."""
        result = session.exec(delete(SealedCopy).where(col(SealedCopy.grant_id) == grant.id))
        if not result.rowcount:
            return False
        self.audit.record(
            session,
            Kind.GRANT_SEAL_DELETED,
            actor=actor,
            customer_id=grant.customer_id,
            brand_id=grant.brand_id,
            grant=grant.id,
            reason=reason,
        )
        return True
