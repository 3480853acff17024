"""Revoking token families: every refresh and access token descended from one authorization code.

One function for every cause (code replay, refresh-token reuse, RFC 7009 revocation, a grant that
ended), each revocation recorded in the audit log; and one that lets a renewed grant's refresh
tokens outlive the expiry they were capped at. `TokenFamilies` is the notice subscriber
(`broker.consent.notices`) that applies both to a grant's transitions: consent never calls here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from uuid import UUID

from sqlmodel import Session, col, select, update

from broker.audit.entries import Actor, Kind
from broker.audit.log import AuditLog
from broker.consent.models import Grant
from broker.consent.notices import Notice, NoticeType
from broker.oauth.context import REFRESH_TOKEN_LIFETIME
from broker.oauth.models import RefreshToken, TokenFamily

__all__ = ["TokenFamilies", "extend_refresh_tokens", "revoke_families"]

# A grant that ends takes its token families with it; the reason names how it ended.
_ENDED: Final = {NoticeType.GRANT_REVOKED: "grant-revoked", NoticeType.GRANT_EXPIRED: "grant-expired"}


@dataclass(frozen=True, slots=True)
class TokenFamilies:
    """Token families follow their grant (a notice subscriber, in the publisher's transaction): a
    grant that ends revokes its live families, a renewed one extends its refresh tokens."""

    audit: AuditLog

    def notice(self, session: Session, notice: Notice) -> None:
        """Revoke or extend, as the grant's transition asks; any other notice changes no token."""
        if notice.type in _ENDED:
            revoke_families(
                session,
                self.audit,
                grant_id=notice.grant_id,
                reason=_ENDED[notice.type],
                actor=notice.actor,
                at=notice.at,
            )
        elif notice.type is NoticeType.GRANT_RENEWED:
            grant = session.get(Grant, notice.grant_id)
            assert grant is not None, "a grant notice names a grant"
            extend_refresh_tokens(
                session,
                grant_id=grant.id,
                until=grant.expires_at,
                lifetime=REFRESH_TOKEN_LIFETIME,
                now=notice.at,
            )


def revoke_families(
    session: Session,
    audit: AuditLog,
    *,
    reason: str,
    actor: Actor,
    at: datetime,
    family_id: UUID | None = None,
    grant_id: UUID | None = None,
) -> int:
    """Revoke the live family `family_id`, or every live family of `grant_id`; returns how many.

    Refresh tokens stop working at once; access tokens fail their next read (reads check the family).
    """
    if (family_id is None) == (grant_id is None):
        raise ValueError("name exactly one of family_id and grant_id")
    live = col(TokenFamily.revoked_at).is_(None)
    which = col(TokenFamily.id) == family_id if family_id else col(TokenFamily.grant_id) == grant_id
    rows = session.exec(
        select(TokenFamily.id, TokenFamily.grant_id, Grant.customer_id, Grant.brand_id)
        .join(Grant, col(Grant.id) == col(TokenFamily.grant_id))
        .where(which, live)
        .with_for_update(of=TokenFamily)  # PostgreSQL: a concurrent revoker waits, then finds none
    ).all()
    if not rows:
        return 0
    session.exec(
        update(TokenFamily)
        .where(col(TokenFamily.id).in_([row[0] for row in rows]), live)
        .values(revoked_at=at, revoked_reason=reason)
    )
    for family, grant, customer_id, brand_id in rows:
        audit.record(
            session,
            Kind.TOKEN_FAMILY_REVOKED,
            actor=actor,
            customer_id=customer_id,
            brand_id=brand_id,
            grant=grant,
            family=family,
            reason=reason,
        )
    return len(rows)


def extend_refresh_tokens(
    session: Session, *, grant_id: UUID, until: datetime, lifetime: timedelta, now: datetime
) -> None:
    """A renewed grant: its live, unused refresh tokens, which were capped at the old expiry, now last
    their full `lifetime` from issue, capped at the new expiry `until`."""
    tokens = session.exec(
        select(RefreshToken)
        .join(TokenFamily, col(TokenFamily.id) == col(RefreshToken.family_id))
        .where(col(TokenFamily.grant_id) == grant_id, col(TokenFamily.revoked_at).is_(None))
        .where(col(RefreshToken.used_at).is_(None), col(RefreshToken.expires_at) > now)
    )
    for token in tokens:
        token.expires_at = min(token.created_at + lifetime, until)
        session.add(token)
