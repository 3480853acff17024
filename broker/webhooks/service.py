"""Webhook endpoints of a brand, and the outbox: every notice becomes a message for each endpoint that
wants it, written in the transaction of the change it reports.

Registering checks the URL against `broker.webhooks.addresses` (no private or loopback targets unless
the development setting allows them); the secret is derived (`broker.webhooks.signing`) and returned
once. Another brand's endpoint is 404, as if it did not exist.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlmodel import Session, col, func, select

from broker.consent.notices import Notice
from broker.errors import Conflict, NotFound, ValidationFailed
from broker.pagination import Page, page
from broker.webhooks.addresses import Refused, Resolver, resolve_system, vet
from broker.webhooks.models import MessageStatus, WebhookAttempt, WebhookEndpoint, WebhookMessage
from broker.webhooks.schemas import WebhookCreate
from broker.webhooks.signing import WebhookSecrets

__all__ = ["MAX_ENDPOINTS", "Registered", "Webhooks", "payload"]

MAX_ENDPOINTS = 20  # per brand: each endpoint multiplies every event


@dataclass(frozen=True, slots=True)
class Registered:
    """A new endpoint and its secret, which exists in clear only here."""

    endpoint: WebhookEndpoint
    secret: str


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def payload(notice: Notice, subject: str, ticket: str | None = None) -> bytes:
    """The Standard Webhooks body of a notice: type, timestamp, and ids and terms, never a value; for
    a grant the customer started in the directory, the `grant_ticket` to exchange for its tokens."""
    # The ids last: a notice's data can never stand in for the grant or the subject.
    data = {**notice.data, "grant_id": str(notice.grant_id), "subject": subject, "actor": notice.actor.value}
    if ticket is not None:
        data["grant_ticket"] = ticket
    body = {"type": notice.type.value, "timestamp": _iso(notice.at), "data": data}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class Webhooks:
    """Endpoint management, and the notice subscriber that fills the outbox."""

    clock: Callable[[], datetime]
    secrets: WebhookSecrets
    subject: Callable[[UUID, UUID], str]  # the customer's pairwise `sub` for a brand
    # A grant ticket for a grant the customer started in the directory (`broker.oauth.tickets`).
    ticket: Callable[[Session, Notice], str] | None = None
    allow_private: bool = False
    resolve: Resolver = resolve_system

    def register(self, session: Session, brand_id: UUID, draft: WebhookCreate) -> Registered:
        """Add an endpoint for `brand_id` after vetting its URL; returns it with its secret."""
        try:
            vet(draft.url, allow_private=self.allow_private, resolve=self.resolve)
        except Refused as exc:
            raise ValidationFailed(str(exc), errors=[{"pointer": "/url", "detail": str(exc)}]) from None
        count = session.exec(
            select(func.count()).select_from(WebhookEndpoint).where(WebhookEndpoint.brand_id == brand_id)
        ).one()
        if count >= MAX_ENDPOINTS:
            raise Conflict(
                f"a brand may register at most {MAX_ENDPOINTS} webhook endpoints; delete one first"
            )
        events = None if draft.events is None else [e.value for e in dict.fromkeys(draft.events)]
        endpoint = WebhookEndpoint(
            brand_id=brand_id,
            url=draft.url,
            events=events,
            description=draft.description or None,
            created_at=self.clock(),
        )
        session.add(endpoint)
        session.flush()
        return Registered(endpoint, self.secrets.shown(endpoint.id, endpoint.secret_version))

    def get(self, session: Session, brand_id: UUID, endpoint_id: UUID) -> WebhookEndpoint:
        """One of the brand's endpoints; anyone else's (or an unknown id) is 404."""
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        if endpoint is None or endpoint.brand_id != brand_id:
            raise NotFound(f"webhook endpoint '{endpoint_id}' not found; list yours with GET /v1/webhooks")
        return endpoint

    def listing(
        self, session: Session, brand_id: UUID, *, cursor: str | None, limit: int
    ) -> Page[WebhookEndpoint]:
        """The brand's endpoints, newest first."""
        query = select(WebhookEndpoint).where(WebhookEndpoint.brand_id == brand_id)
        return page(
            session, query, WebhookEndpoint.created_at, WebhookEndpoint.id, cursor=cursor, limit=limit
        )

    def delete(self, session: Session, brand_id: UUID, endpoint_id: UUID) -> None:
        """Remove an endpoint; its undelivered messages and its delivery log go with it."""
        session.delete(self.get(session, brand_id, endpoint_id))
        session.flush()

    def rotate_secret(self, session: Session, brand_id: UUID, endpoint_id: UUID) -> Registered:
        """A new secret for the endpoint: the next attempt is signed with it, the old one is dead."""
        endpoint = self.get(session, brand_id, endpoint_id)
        endpoint.secret_version += 1
        session.add(endpoint)
        session.flush()
        return Registered(endpoint, self.secrets.shown(endpoint.id, endpoint.secret_version))

    def deliveries(
        self, session: Session, brand_id: UUID, endpoint_id: UUID, *, cursor: str | None, limit: int
    ) -> Page[WebhookAttempt]:
        """The endpoint's delivery log, newest attempt first."""
        endpoint = self.get(session, brand_id, endpoint_id)
        query = select(WebhookAttempt).where(WebhookAttempt.endpoint_id == endpoint.id)
        return page(session, query, WebhookAttempt.created_at, WebhookAttempt.id, cursor=cursor, limit=limit)

    def notice(self, session: Session, notice: Notice) -> None:
        """Subscriber: queue a message for each of the brand's endpoints that wants this type."""
        endpoints = session.exec(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.brand_id == notice.brand_id)
            .order_by(col(WebhookEndpoint.created_at))
        ).all()
        wanting = [e for e in endpoints if e.wants(notice.type.value)]
        if not wanting:
            return
        ticket = None
        if notice.data.get("origin") == "directory" and self.ticket is not None:
            ticket = self.ticket(session, notice)  # one for every endpoint: it is spent once
        body = payload(notice, self.subject(notice.brand_id, notice.customer_id), ticket)
        now = self.clock()
        for endpoint in wanting:
            session.add(
                WebhookMessage(
                    endpoint_id=endpoint.id,
                    event_type=notice.type.value,
                    body=body,
                    status=MessageStatus.PENDING,
                    created_at=now,
                    next_attempt_at=now,
                )
            )
