"""A brand reading a customer's profile: the token and the grant are checked live and the read is
recorded in the audit log, in the same transaction as the read itself: no read is served without its
entry. `serve` runs the whole read as a job of the `GroupCommitter`, which shares one transaction
and one commit among concurrent reads (`broker.audit.group_commit` argues why the ordering of a
read and a revocation still holds)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlmodel import Session

from broker.audit.entries import Actor, Kind
from broker.audit.group_commit import GroupCommitter, Retry
from broker.audit.log import AuditLog
from broker.consent.grants import Grants, effective_status
from broker.consent.models import Grant, GrantStatus
from broker.consent.renewal import ensure_confirmed
from broker.db import SessionFactory
from broker.errors import Forbidden, NotAuthenticated
from broker.oauth.bearer import BrandAccess, ensure_family_live, verify_access_token
from broker.oauth.clients import PROFILE_SCOPE_PREFIX
from broker.oauth.context import OAuthServices
from broker.value.service import ValueLedger
from vault.profile import Vault


@dataclass(frozen=True, slots=True)
class ProfileReads:
    """Serve `GET /v1/profile`."""

    vault: Vault
    grants: Grants
    value: ValueLedger
    audit: AuditLog
    oauth: OAuthServices
    committer: GroupCommitter

    def serve(self, sessions: SessionFactory, token: str, *, request_id: str | None) -> dict[str, Any]:
        """Verify the bearer `token` and `read`, in a batch of concurrent reads; answered once the
        batch (and so this read's entry) is committed."""

        attempts = 0

        def job(session: Session) -> dict[str, Any]:
            nonlocal attempts
            attempts += 1  # a shared lock first; the exclusive one if the read turns out to write
            return self.read(session, verify_access_token(session, self.oauth, token), shared=attempts == 1)

        return self.committer.run(job, sessions=sessions, request_id=request_id, order=_grant_hint(token))

    def read(self, session: Session, access: BrandAccess, *, shared: bool = False) -> dict[str, Any]:
        """The granted fields (derived ones computed), if the grant is live; recorded in the audit log.

        With `shared`, the grant is locked FOR SHARE, and a read that would update it (the first, or
        one whose value check is due) raises `Retry` to be run again with the exclusive lock."""
        grant_id = access.claims.get("grant_id")
        if grant_id is None or "fam" not in access.claims:
            raise Forbidden(
                "this is a brand token; reading a profile needs a token from the customer's consent",
                slug="insufficient-scope",
            )
        # A row lock on PostgreSQL: a revocation (an UPDATE) waits for this read to commit, so the log
        # orders the read before the revocation, as it happened. FOR SHARE lets concurrent reads of
        # one grant share it; a read that updates the grant (value overdue, first read) takes FOR NO
        # KEY UPDATE from the start, never upgrading a shared lock (two upgraders would deadlock).
        lock = {"read": True} if shared else {"key_share": True}
        grant = session.get(Grant, UUID(str(grant_id)), with_for_update=lock)
        if grant is None or grant.brand_id != access.brand.id:
            raise NotAuthenticated("the grant behind this token no longer exists")
        now = self.grants.clock()
        if shared and (grant.first_read_at is None or (grant.value_check_at and now >= grant.value_check_at)):
            raise Retry("this read updates the grant: it needs the exclusive lock")
        if effective_status(grant, now) in (GrantStatus.ACTIVE, GrantStatus.SUSPENDED):
            self.value.before_read(session, grant)
        self.grants.ensure_live(grant)
        ensure_confirmed(grant, now)
        ensure_family_live(session, access)
        asked = [
            s.removeprefix(PROFILE_SCOPE_PREFIX) for s in access.scopes if s.startswith(PROFILE_SCOPE_PREFIX)
        ]
        fields = [f for f in grant.fields if f in asked]  # a narrowed grant wins over an older token
        values = self.vault.read(session, grant.customer_id, fields)
        self.value.read_served(session, grant)
        self.audit.record(
            session,
            Kind.PROFILE_READ,
            actor=Actor.BRAND,
            customer_id=grant.customer_id,
            brand_id=grant.brand_id,
            grant=grant.id,
            fields=fields,
            purpose=grant.purpose,
        )
        return {"sub": access.claims["sub"], "grant_id": grant.id, "purpose": grant.purpose, "fields": values}


def _grant_hint(token: str) -> str:
    """The grant id a JWT's payload names, unverified: only to order the locks of a batch."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return ""
    return str(claims.get("grant_id", "")) if isinstance(claims, dict) else ""
