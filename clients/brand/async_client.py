"""`AsyncConsentryClient`: the brand SDK over `httpx.AsyncClient`. Every request and rule comes from
`protocol` and `endpoints`; this module only sends, and serialises token refreshes between tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from clients.brand import endpoints
from clients.brand.authorization import AuthorizationRequest
from clients.brand.endpoints import Id, Outcome
from clients.brand.errors import ServerUnreachable
from clients.brand.models import (
    AccessLogPage,
    Acknowledgement,
    Contact,
    DeletionAttestation,
    Escalation,
    Grant,
    GrantPage,
    GrantTicket,
    Obligation,
    Offer,
    OfferPage,
    PreferencesRead,
    Profile,
    RatingPage,
    ServerMetadata,
)
from clients.brand.protocol import BRAND_SCOPES, Call, Protocol
from clients.brand.sealed import DecryptionKeys
from clients.brand.tokens import GrantSession, TokenSet

__all__ = ["AsyncConsentryClient"]

T = TypeVar("T")


class AsyncConsentryClient:
    """A brand's client for one Consentry broker (`issuer`, its public base URL).

    `client_secret=None` makes a public client (PKCE only, no brand-level calls). `transport` replaces
    the network (tests pass `httpx.MockTransport` or an app's transport); `clock` is the time the client
    judges token expiry by. Use it as a context manager, or call `close()`.
    """

    def __init__(
        self,
        issuer: str,
        *,
        client_id: str,
        client_secret: str | None = None,
        redirect_uri: str | None = None,
        brand_scopes: Sequence[str] = BRAND_SCOPES,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        clock: Callable[[], datetime] | None = None,
        refresh_leeway: timedelta = timedelta(seconds=30),
        decryption_keys: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        self._protocol = Protocol(
            issuer,
            client_id=client_id,
            client_secret=client_secret,
            redirect_uri=redirect_uri,
            brand_scopes=brand_scopes,
            clock=clock,
            refresh_leeway=refresh_leeway,
            decryption_keys=DecryptionKeys(decryption_keys) if decryption_keys else None,
        )
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False)
        self._brand_lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    # OAuth

    async def discover(self) -> ServerMetadata:
        """Fetch and check the RFC 8414 metadata (done on first need if not called)."""
        return self._protocol.accept_metadata(await self._send(self._protocol.discovery_request()))

    async def authorization_url(
        self,
        *,
        offer_id: Id,
        redirect_uri: str | None = None,
        scopes: Sequence[str] | None = None,
        state: str | None = None,
        prompt: str | None = None,
    ) -> AuthorizationRequest:
        """Where to send the customer to consent to `offer_id`: `(url, state, code_verifier)`; keep the
        last two for `handle_callback`. `prompt="none"`: no page at all; the customer's live grant of
        the offer (one they started in the directory, say) comes back at once, or the callback carries
        `consent_required` or `login_required`."""
        return self._protocol.authorization(
            await self._metadata(),
            offer_id=str(offer_id),
            redirect_uri=redirect_uri,
            scopes=scopes,
            state=state,
            prompt=prompt,
        )

    async def handle_callback(
        self,
        callback: str | Mapping[str, str],
        *,
        expected_state: str,
        code_verifier: str,
        redirect_uri: str | None = None,
        on_refresh: Callable[[TokenSet], None] | None = None,
    ) -> GrantSession:
        """Check the redirect back (state, iss) and trade its code for the grant's tokens."""
        request = self._protocol.code_request(
            await self._metadata(),
            callback,
            expected_state=expected_state,
            code_verifier=code_verifier,
            redirect_uri=redirect_uri,
        )
        return GrantSession(
            self._protocol.accept_tokens(await self._send(request), for_grant=True), on_refresh
        )

    async def refresh(self, session: GrantSession) -> TokenSet:
        """Refresh the session's tokens now (reads refresh on their own when needed)."""
        await self._grant_token(session, refused=session.tokens.access_token)
        return session.tokens

    async def exchange_grant_ticket(
        self, ticket: str, *, on_refresh: Callable[[TokenSet], None] | None = None
    ) -> GrantSession:
        """The tokens of a grant the customer started in the offer directory: trade the `grant_ticket`
        of its `grant.created` webhook (or of `new_grant_ticket`) at the token endpoint (RFC 8693 token
        exchange). A ticket is spent once; the session then reads and refreshes like any other."""
        request = self._protocol.ticket_request(await self._metadata(), ticket)
        return GrantSession(
            self._protocol.accept_tokens(await self._send(request), for_grant=True), on_refresh
        )

    # The brand API

    async def read_profile(self, session: GrantSession, *, purpose: str | None = None) -> Profile:
        """`GET /v1/profile`: the fields the customer granted for `purpose`, if the grant is live. A
        grant of several purposes needs the read to say which (`PurposeRequired` otherwise)."""
        profile = await self._run(endpoints.read_profile(purpose), session)
        return self._protocol.unseal(profile, session)

    async def read_preferences(self, session: GrantSession) -> PreferencesRead:
        """`GET /v1/preferences`: how, when, how often and about what the customer behind the grant
        may be contacted, and whether their data may be sold or shared. Honour them while the grant is
        live; read them again on a `preferences.changed` webhook."""
        return await self._run(endpoints.read_preferences(), session)

    async def report_contact(
        self,
        grant_id: Id,
        *,
        channel: str,
        contacted_at: datetime,
        purpose: str,
        topics: Sequence[str] = (),
    ) -> Contact:
        """`POST /v1/grants/{id}/contacts`: report a contact you made with the customer of a grant
        (within 30 days); the answer says what of their preferences it broke, if anything."""
        return await self._run(
            endpoints.report_contact(grant_id, channel, contacted_at, purpose, list(topics))
        )

    async def publish_offer(self, offer: Mapping[str, Any]) -> Offer:
        """`POST /v1/offers`: publish an offer (see the README for its members)."""
        return await self._run(endpoints.publish_offer(offer))

    async def revise_offer(self, offer_id: Id, offer: Mapping[str, Any]) -> Offer:
        """`PUT /v1/offers/{id}`: publish a new version of the offer (`listed: true` shows it in the
        customers' offer directory, `false` takes it out); grants keep the version they agreed to."""
        return await self._run(endpoints.revise_offer(offer_id, offer))

    async def withdraw_offer(self, offer_id: Id) -> Offer:
        """`DELETE /v1/offers/{id}`: no new grants (it leaves the directory at once)."""
        return await self._run(endpoints.withdraw_offer(offer_id))

    async def list_ratings(self, *, cursor: str | None = None, limit: int | None = None) -> RatingPage:
        """`GET /v1/feedback`: your customers' ratings, newest first (unnamed, dated by day, with the
        words they chose to share)."""
        return await self._run(endpoints.list_ratings(cursor, limit))

    async def list_offers(
        self, *, status: str | None = None, cursor: str | None = None, limit: int | None = None
    ) -> OfferPage:
        """`GET /v1/offers`: this brand's offers, newest first."""
        return await self._run(endpoints.list_offers(status, cursor, limit))

    async def list_grants(
        self, *, status: str | None = None, cursor: str | None = None, limit: int | None = None
    ) -> GrantPage:
        """`GET /v1/grants`: this brand's grants, newest first."""
        return await self._run(endpoints.list_grants(status, cursor, limit))

    async def get_grant(self, grant_id: Id) -> Grant:
        """`GET /v1/grants/{id}`."""
        return await self._run(endpoints.get_grant(grant_id))

    async def decline_grant(self, grant_id: Id) -> Grant:
        """`POST /v1/grants/{id}/decline`: decline a grant a customer started in the directory, before
        its `decline_by` and before reading it; it ends with a receipt and nothing is owed."""
        return await self._run(endpoints.decline_grant(grant_id))

    async def new_grant_ticket(self, grant_id: Id) -> GrantTicket:
        """`POST /v1/grants/{id}/ticket`: a new grant ticket for a live grant started in the directory,
        when the webhook's was lost or expired."""
        return await self._run(endpoints.new_grant_ticket(grant_id))

    async def end_grant(self, grant_id: Id) -> None:
        """`DELETE /v1/grants/{id}`: the brand ends the grant; its tokens stop working."""
        await self._run(endpoints.end_grant(grant_id))

    async def deliver_value(
        self,
        grant_id: Id,
        *,
        kind: str,
        redemption: str,
        amount: Decimal | str | None = None,
        currency: str | None = None,
        obligation_id: Id | None = None,
    ) -> Obligation:
        """`POST /v1/grants/{id}/value`: record the delivery of what the offer declared."""
        call = endpoints.deliver_value(
            grant_id,
            kind=kind,
            redemption=redemption,
            amount=amount,
            currency=currency,
            obligation_id=obligation_id,
        )
        return await self._run(call)

    async def list_value(self, grant_id: Id) -> list[Obligation]:
        """`GET /v1/grants/{id}/value`: what the grant owes and has delivered, oldest first."""
        return await self._run(endpoints.list_value(grant_id))

    async def answer_dispute(self, grant_id: Id, obligation_id: Id, *, answer: str) -> Obligation:
        """`POST /v1/grants/{id}/value/{obligation}/answer`: answer a customer's dispute."""
        return await self._run(endpoints.answer_dispute(grant_id, obligation_id, answer))

    async def escalate_dispute(self, grant_id: Id, obligation_id: Id) -> Escalation:
        """`POST /v1/grants/{id}/value/{obligation}/escalation`: ask the auditors to decide a dispute
        (once the customer rejected your answer, or you did not answer within the answer window); it
        waits for the customer's agreement to show them the file. Asking again returns the same one."""
        return await self._run(endpoints.escalate_dispute(grant_id, obligation_id))

    def end_acknowledgement_claims(
        self, grant_id: Id, *, stopped_processing_at: datetime, deletion_by: datetime
    ) -> dict[str, Any]:
        """The claims to sign (typ `grant-end-ack+jwt`, a registered key's `kid`) for `acknowledge_end`,
        if you registered keys; sign them with your JOSE library."""
        return self._protocol.end_acknowledgement_claims(
            str(grant_id), stopped_processing_at=stopped_processing_at, deletion_by=deletion_by
        )

    async def acknowledge_end(
        self,
        grant_id: Id,
        *,
        stopped_processing_at: datetime | None = None,
        deletion_by: datetime | None = None,
        statement: str | None = None,
    ) -> Acknowledgement:
        """`POST /v1/grants/{id}/acknowledgement`: state, once, that an ended grant's data is no longer
        processed and when it will be deleted; with keys registered, send the signed `statement`."""
        call = endpoints.acknowledge_end(
            grant_id,
            stopped_processing_at=stopped_processing_at,
            deletion_by=deletion_by,
            statement=statement,
        )
        return await self._run(call)

    async def attest_deletion(
        self, grant_id: Id, *, outcome: Outcome, completed_at: datetime, note: str | None = None
    ) -> DeletionAttestation:
        """`POST /v1/grants/{id}/deletion`: state that an ended grant's data was deleted or de-identified."""
        return await self._run(
            endpoints.attest_deletion(grant_id, outcome=outcome, completed_at=completed_at, note=note)
        )

    async def access_log(
        self, *, grant_id: Id | None = None, cursor: str | None = None, limit: int | None = None
    ) -> AccessLogPage:
        """`GET /v1/access-log`: this brand's audit log entries, newest first, with proofs."""
        return await self._run(endpoints.access_log(grant_id, cursor, limit))

    # Sending

    async def _run(self, call: Call[T], session: GrantSession | None = None) -> T:
        await self._metadata()  # discovery checks the API versions once, before the first call of any kind
        token = await self._token(call, session, refused=None)
        response = await self._send(self._protocol.api_request(call, token))
        if self._protocol.token_refused(response):
            token = await self._token(call, session, refused=token)
            response = await self._send(self._protocol.api_request(call, token))
        return self._protocol.accept(call, response)

    async def _token(self, call: Call[Any], session: GrantSession | None, refused: str | None) -> str:
        if call.auth == "brand":
            return await self._brand_token(refused)
        if session is None:
            raise TypeError(f"{call.method} {call.path} needs the customer's GrantSession")
        return await self._grant_token(session, refused)

    async def _grant_token(self, session: GrantSession, refused: str | None) -> str:
        async with session.task_lock():  # one refresh at a time: a second would reuse a dead refresh token
            if self._protocol.needs_new_token(session.tokens, refused):
                request = self._protocol.refresh_request(await self._metadata(), session.tokens)
                session.replace(
                    self._protocol.accept_tokens(await self._send(request), refreshing=True, for_grant=True)
                )
            return session.tokens.access_token

    async def _brand_token(self, refused: str | None) -> str:
        async with self._brand_lock:
            tokens = self._protocol.brand_tokens
            if tokens is None or self._protocol.needs_new_token(tokens, refused):
                request = self._protocol.brand_token_request(await self._metadata())
                tokens = self._protocol.brand_tokens = self._protocol.accept_tokens(await self._send(request))
            return tokens.access_token

    async def _metadata(self) -> ServerMetadata:
        return self._protocol.metadata or await self.discover()

    async def _send(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._http.send(request)
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"cannot reach {request.url.copy_with(query=None)}: {exc}") from None
