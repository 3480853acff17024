"""A brand reading the preferences of a customer it holds a live grant of: `GET /v1/preferences` with
the grant's access token, whatever the grant's fields, scopes or purposes (the preferences bind every
brand the customer shares with, so no offer has to ask for them).

The token is checked as a profile read checks it (signature, issuer, audience, lifetime; its grant,
the brand owning it, its token family not revoked) and the grant must be live: active, or suspended
for an overdue value (a suspended brand may not read the profile, but it must still honour the
preferences of the people it may contact). Each read is a `preferences.read` audit entry in the
read's own transaction (brand, pairwise subject, grant; never a value), and the customer sees it
among the accesses to their data.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlmodel import Session

from broker.audit.entries import Actor, Kind
from broker.audit.log import AuditLog
from broker.consent.grants import Grants, effective_status
from broker.consent.models import GrantStatus
from broker.errors import InsufficientScope, NotAuthenticated
from broker.oauth.bearer import access_for, verify_claims
from broker.oauth.context import OAuthServices
from broker.usecases.reads import LIVE_GRANT, grant_key
from broker.voice.preferences import Preferences, PreferencesPublic

__all__ = ["PreferenceReads"]


@dataclass(frozen=True, slots=True)
class PreferenceReads:
    """Serve `GET /v1/preferences`."""

    oauth: OAuthServices
    grants: Grants
    preferences: Preferences
    audit: AuditLog

    def read(self, session: Session, token: str) -> tuple[str, UUID, PreferencesPublic]:
        """The token's subject, its grant and the customer's preferences, recorded as a read."""
        claims = verify_claims(self.oauth, token)
        key = grant_key(claims)
        if key is None:
            access_for(session, claims)  # a brand token: 401 if revoked or orphaned
            raise InsufficientScope(
                "this is a brand token; reading preferences needs the access token of a grant"
            )
        params = {"grant_id": key[0], "family_id": key[1], "client_id": key[2]}
        # The profile read's query: the grant row locked as a read locks it, so that a revocation
        # committing meanwhile is logged after this read, as it happened.
        found = session.exec(LIVE_GRANT, params=params).first()
        if found is None:
            access_for(session, claims)  # 401 if the brand is gone
            raise NotAuthenticated("the grant behind this token no longer exists")
        grant, family, family_revoked_at = found
        if effective_status(grant, self.grants.clock()) is not GrantStatus.SUSPENDED:
            self.grants.ensure_live(grant)  # 403 grant-revoked or grant-expired, since when
        if family is None or family_revoked_at is not None:
            raise NotAuthenticated("the access token has been revoked")
        preferences = self.preferences.of(session, grant.customer_id)
        self.audit.record(
            session,
            Kind.PREFERENCES_READ,
            actor=Actor.BRAND,
            customer_id=grant.customer_id,
            brand_id=grant.brand_id,
            grant=grant.id,
        )
        return str(claims["sub"]), grant.id, preferences
