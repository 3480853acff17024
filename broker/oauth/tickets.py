"""Tokens for a grant the customer started in the directory: a grant ticket, exchanged at the token
endpoint by OAuth 2.0 Token Exchange (RFC 8693).

There is no redirect to carry a code when the customer accepts an offer in the directory, so the
brand is told by its `grant.created` webhook, which carries a **grant ticket**: a JWT the broker
signs (typ `grant-ticket+jwt`, Ed25519, our published keys) naming the grant, the brand's client id
(`aud`), the pairwise subject and a `jti`, valid for `TICKET_LIFETIME`. The brand, authenticated as
its client (a confidential one: secret or private_key_jwt), posts

    grant_type=urn:ietf:params:oauth:grant-type:token-exchange
    subject_token=<the ticket>
    subject_token_type=urn:consentry:params:oauth:token-type:grant-ticket

and gets what a code would have given: an access token for that grant only (its fields, its
pairwise subject), a rotating refresh token of a new token family, and `issued_token_type`. A ticket
is spent once (its `jti` is stored); one replayed, forged, expired, of another client, or of a grant
that is no longer live is `invalid_grant`. Why RFC 8693 rather than the JWT bearer grant (RFC 7523):
the ticket is not an assertion the brand makes, but a token the broker issued for the brand to
exchange, which is exactly what a subject token is; and a standard library's token-exchange call
(Authlib, oauth4webapi, Spring, …) works unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final
from uuid import UUID

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, UnauthorizedClientError
from authlib.oauth2.rfc6749.grants.base import BaseGrant, TokenEndpointMixin
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from broker.accounts.models import Brand
from broker.consent.grants import effective_status
from broker.consent.models import Grant, GrantStatus
from broker.consent.notices import Notice
from broker.consent.scopes import fields_scope
from broker.ids import unique_id
from broker.oauth.context import OAuthHTTPRequest, OAuthServices
from broker.oauth.flows import Subject
from broker.oauth.models import GrantTicketUse, TokenFamily
from broker.oauth.signing import ALGORITHM, InvalidJWT, WrongTokenType

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "GRANT_TICKET_TYPE",
    "TICKET_JWT_TYPE",
    "TICKET_LIFETIME",
    "TOKEN_EXCHANGE",
    "GrantTicket",
    "TicketExchange",
    "issue_ticket",
    "prune_spent_tickets",
    "ticket_for_notice",
]

TOKEN_EXCHANGE: Final = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 (a URN)
GRANT_TICKET_TYPE: Final = "urn:consentry:params:oauth:token-type:grant-ticket"
ACCESS_TOKEN_TYPE: Final = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 (a URN)
TICKET_JWT_TYPE: Final = "grant-ticket+jwt"
TICKET_LIFETIME: Final = timedelta(days=7)


class GrantTicket(BaseModel):
    """A grant ticket, to exchange at the token endpoint for the grant's tokens (RFC 8693)."""

    grant_ticket: str = Field(
        description="send it as subject_token, with subject_token_type " + GRANT_TICKET_TYPE
    )
    expires_at: datetime


def issue_ticket(
    services: OAuthServices, *, grant_id: UUID, brand_id: UUID, customer_id: UUID, client_id: str
) -> tuple[str, datetime]:
    """A grant ticket for the brand (`client_id`) of a grant its customer started in the directory,
    and when it expires."""
    now = services.clock()
    expires_at = now + TICKET_LIFETIME
    claims = {
        "iss": services.issuer,
        "aud": client_id,
        "sub": services.pairwise_subject(brand_id, customer_id),
        "grant_id": str(grant_id),
        "jti": unique_id(),
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    return services.signing.sign(claims, typ=TICKET_JWT_TYPE), expires_at


def ticket_for_notice(services: OAuthServices, session: Session, notice: Notice) -> str:
    """The grant ticket a `grant.created` webhook of a directory grant carries."""
    brand = session.get(Brand, notice.brand_id)
    assert brand is not None  # the grant's brand, in the transaction that made the grant
    ticket, _ = issue_ticket(
        services,
        grant_id=notice.grant_id,
        brand_id=notice.brand_id,
        customer_id=notice.customer_id,
        client_id=brand.client_id,
    )
    return ticket


def prune_spent_tickets(clock: Callable[[], datetime], session: Session, *, limit: int) -> int:
    """Delete up to `limit` spent tickets that have expired anyway (their expiry refuses them before
    their `jti` is looked at); returns how many went. A lifecycle prune (`clock` bound by the runtime)."""
    expired = select(GrantTicketUse.jti).where(col(GrantTicketUse.expires_at) <= clock()).limit(limit)
    jtis = list(session.exec(expired))
    if jtis:
        session.exec(delete(GrantTicketUse).where(col(GrantTicketUse.jti).in_(jtis)))
    return len(jtis)


def _ticket_claims(services: OAuthServices, token: str) -> dict[str, Any]:
    """The claims of a ticket one of our Ed25519 keys signed, typed as a ticket; else invalid_grant."""
    try:
        return services.signing.verify_typed(
            token, typ=TICKET_JWT_TYPE, algorithms=[ALGORITHM], what="a grant ticket", max_length=4096
        )
    except WrongTokenType as exc:
        raise InvalidGrantError(f"subject_token is {exc}") from None
    except InvalidJWT:
        raise InvalidGrantError("subject_token is not a grant ticket this broker issued") from None


class TicketExchange(BaseGrant, TokenEndpointMixin):
    """RFC 8693 token exchange of a grant ticket for the grant's tokens (see the module docstring)."""

    GRANT_TYPE = TOKEN_EXCHANGE
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]

    def validate_token_request(self) -> None:
        """Authenticate the client, then check the ticket: ours, unexpired, for this client, its grant
        live and started in the directory, and never spent (it is spent here)."""
        request: OAuthHTTPRequest = self.request
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("a public client cannot exchange grant tickets")
        request.client = client
        form = request.form
        if form.get("subject_token_type") != GRANT_TICKET_TYPE:
            raise InvalidRequestError(f"subject_token_type must be {GRANT_TICKET_TYPE}")
        wanted = form.get("requested_token_type")
        if wanted is not None and wanted != ACCESS_TOKEN_TYPE:
            raise InvalidRequestError(f"requested_token_type may only be {ACCESS_TOKEN_TYPE}")
        if form.get("actor_token") is not None:
            raise InvalidRequestError("actor_token is not supported: the brand acts as itself")
        if form.get("scope") is not None:
            raise InvalidRequestError("scope is not taken here: the tokens carry the grant's fields")
        ticket = form.get("subject_token")
        if not ticket:
            raise InvalidRequestError(
                "subject_token is required: the grant ticket of the grant.created webhook"
            )
        ctx = request.ctx
        services, now = ctx.services, ctx.services.clock()
        claims = _ticket_claims(services, ticket)
        if claims.get("iss") != services.issuer or claims.get("aud") != client.get_client_id():
            raise InvalidGrantError("this grant ticket was issued to another client")
        expiry = claims.get("exp")
        if not isinstance(expiry, int) or expiry <= now.timestamp():
            raise InvalidGrantError("this grant ticket has expired; ask for a new one")
        try:
            grant = ctx.session.get(Grant, UUID(str(claims.get("grant_id"))))
        except ValueError:
            grant = None
        if grant is None or grant.brand_id != client.brand.id or not grant.started_in_directory:
            raise InvalidGrantError("this grant ticket names no grant of this client")
        if effective_status(grant, now) is not GrantStatus.ACTIVE:
            raise InvalidGrantError("the grant of this ticket is no longer active")
        self._spend(str(claims.get("jti", "")), grant, now, datetime.fromtimestamp(expiry, now.tzinfo))
        family = TokenFamily(grant_id=grant.id, brand_id=grant.brand_id, created_at=now)
        ctx.session.add(family)
        ctx.session.flush()
        request.user = Subject(grant, family.id)

    def _spend(self, jti: str, grant: Grant, now: datetime, expires_at: datetime) -> None:
        session = self.request.ctx.session
        if not jti or len(jti) > 64 or session.get(GrantTicketUse, jti) is not None:
            raise InvalidGrantError("this grant ticket was already exchanged")
        try:
            with session.begin_nested():
                session.add(GrantTicketUse(jti=jti, grant_id=grant.id, used_at=now, expires_at=expires_at))
        except IntegrityError:  # spent at the same moment by another request
            raise InvalidGrantError("this grant ticket was already exchanged") from None

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        """The grant's tokens, as a code would have given them, and `issued_token_type`."""
        subject = self.request.user
        assert isinstance(subject, Subject)
        scope = fields_scope(subject.grant.fields)
        token: dict[str, Any] = self.generate_token(user=subject, scope=scope, include_refresh_token=True)
        self.save_token(token)
        token["issued_token_type"] = ACCESS_TOKEN_TYPE
        return 200, token, self.TOKEN_RESPONSE_HEADER
