"""A brand reading a customer's profile: the grant is checked live and the read is recorded,
in the same transaction as the read itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlmodel import Session

from broker.consent.grants import Grants
from broker.consent.models import AccessRecord, Grant
from broker.errors import Forbidden, NotAuthenticated
from broker.oauth.bearer import BrandAccess, ensure_family_live
from broker.oauth.clients import PROFILE_SCOPE_PREFIX
from vault.profile import Vault


@dataclass(frozen=True, slots=True)
class ProfileReads:
    """Serve `GET /v1/profile`."""

    vault: Vault
    grants: Grants
    clock: Callable[[], datetime]

    def read(self, session: Session, access: BrandAccess, *, request_id: str) -> dict[str, Any]:
        """The granted fields (derived ones computed), if the grant is live; recorded as an access."""
        grant_id = access.claims.get("grant_id")
        if grant_id is None or "fam" not in access.claims:
            raise Forbidden(
                "this is a brand token; reading a profile needs a token from the customer's consent",
                slug="insufficient-scope",
            )
        grant = session.get(Grant, UUID(str(grant_id)))
        if grant is None or grant.brand_id != access.brand.id:
            raise NotAuthenticated("the grant behind this token no longer exists")
        self.grants.ensure_live(grant)
        ensure_family_live(session, access)
        asked = [
            s.removeprefix(PROFILE_SCOPE_PREFIX) for s in access.scopes if s.startswith(PROFILE_SCOPE_PREFIX)
        ]
        fields = [f for f in grant.fields if f in asked]  # a narrowed grant wins over an older token
        values = self.vault.read(session, grant.customer_id, fields)
        session.add(
            AccessRecord(
                grant_id=grant.id,
                brand_id=grant.brand_id,
                customer_id=grant.customer_id,
                fields=fields,
                purpose=grant.purpose,
                request_id=request_id,
                created_at=self.clock(),
            )
        )
        return {"sub": access.claims["sub"], "grant_id": grant.id, "purpose": grant.purpose, "fields": values}
