"""What Authlib's grant and endpoint objects need for one request, carried on the request itself.

Authlib builds a grant object per request from the server; the database session and services of the
request ride on our `OAuthHTTPRequest` as `ctx`, so nothing global is needed.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request
from sqlalchemy import Connection
from sqlmodel import Session

from broker.audit.log import AuditLog
from broker.consent.models import Offer
from broker.consent.offers import Offers
from broker.db import LazyConnection
from broker.oauth.client_cache import ClientCache
from broker.oauth.signing import SigningKeys
from vault.blind_index import blind_token

ACCESS_TOKEN_LIFETIME = timedelta(minutes=10)
ID_TOKEN_LIFETIME = timedelta(minutes=10)  # a relying party checks it at once; `id_token_hint` may be older
REFRESH_TOKEN_LIFETIME = timedelta(days=30)
CODE_LIFETIME = timedelta(minutes=5)


def new_secret(prefix: str) -> str:
    """A 256-bit random code or token with a recognisable prefix."""
    return prefix + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class OAuthServices:
    """The long-lived parts: keys, services, issuer, clock."""

    issuer: str
    signing: SigningKeys
    offers: Offers
    pairwise_key: bytes
    audit: AuditLog
    clock: Callable[[], datetime]
    clients: ClientCache  # brands for requests that only read (`broker.oauth.client_cache`)

    def pairwise_subject(self, brand_id: UUID, customer_id: UUID) -> str:
        """The customer's `sub` as one brand sees it (see `pairwise_subject`)."""
        return pairwise_subject(self.pairwise_key, brand_id, customer_id)


def pairwise_subject(key: bytes, brand_id: UUID, customer_id: UUID) -> str:
    """The customer's `sub` as one brand sees it; brands cannot link a customer across brands."""
    return blind_token(key, "pairwise-subject", f"{brand_id}:{customer_id}").hex()


@dataclass(slots=True)
class OAuthContext:
    """Per request: the services, the unit of work's session, and what the consent step decided.

    `connection`, for a request that only reads, is where its lookups on the driver's cursor run
    (`broker.db.read_connection_factory`), opened by the first of them (a token whose brand is cached
    needs none), and such a request has no session (`unit` None: opening and closing an unused one
    cost about 25 µs of a client-credentials token). None: they run in the session's transaction, and
    see what it has flushed."""

    services: OAuthServices
    unit: Session | None
    request_id: str
    offer: Offer | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    connection: LazyConnection | None = None

    @property
    def session(self) -> Session:
        """The request's unit of work; a request that only reads has none, and asking is a bug."""
        if self.unit is None:
            raise RuntimeError("this OAuth request only reads: it has no session to write through")
        return self.unit

    def lookups(self) -> Connection:
        """The connection the request's lookups run on (see the class)."""
        return self.session.connection() if self.connection is None else self.connection.get()


class _Payload(OAuth2Payload):
    def __init__(self, values: Mapping[str, list[str]]) -> None:
        self._datalist = {k: list(v) for k, v in values.items()}
        self._data = {k: v[0] for k, v in values.items() if v}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
        return self._datalist


class OAuthHTTPRequest(OAuth2Request):
    """An OAuth2Request built from a Starlette request's parts (query first, then form, as Flask does)."""

    def __init__(
        self,
        *,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        query: Mapping[str, list[str]],
        form: Mapping[str, list[str]],
        ctx: OAuthContext,
    ) -> None:
        super().__init__(
            method=method, uri=uri, headers=headers
        )  # case-insensitive: Authlib asks for "Authorization"
        merged: dict[str, list[str]] = {k: list(v) for k, v in query.items()}
        for key, values in form.items():
            merged.setdefault(key, []).extend(values)
        self.payload = _Payload(merged)
        self._query = {k: v[0] for k, v in query.items() if v}
        self._form = {k: v[0] for k, v in form.items() if v}
        self.ctx = ctx

    @property
    def args(self) -> dict[str, str]:
        return self._query

    @property
    def form(self) -> dict[str, str]:
        return self._form
