"""The brand SDK against the real app: a brand discovers the broker, sends a customer to consent
(the customer clicks through the portal), trades the code, reads, is refreshed as tokens expire, owes
and delivers value, and hears in typed exceptions what the broker refused. Sync through the test
client's app, async through `httpx.ASGITransport`; the SDK shares the server's injected clock."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from uuid import uuid4

import httpx
import httpx2
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from support.core import FakeClock, bearer, live_server, log_in, sign_up
from support.mail import sign_up_over_http
from support.oauth import (
    ISSUER,
    OFFER,
    REDIRECT,
    BrandCredentials,
    consent,
    create_brand_with_cli,
    portal_login,
)

from broker.app import create_app
from broker.oauth.clients import register_brand
from broker.runtime import Runtime
from clients.brand import (
    AsyncConsentryClient,
    Conflict,
    ConsentryClient,
    GrantInactive,
    GrantSession,
    InvalidCallback,
    NotFound,
    OAuthError,
    RefreshRejected,
    TokenSet,
    ValidationFailed,
    ValueOverdue,
    sign_webhook,
)
from clients.examples.grocery import GroceryConfig
from clients.examples.grocery import create_app as create_grocery

VOUCHER = {"kind": "voucher", "amount": "10.00", "currency": "EUR", "redemption": "CODE-1234"}


class AppTransport(httpx.BaseTransport):
    """Sends the SDK's requests to the app in this process, through the test client."""

    def __init__(self, client: TestClient) -> None:
        self._client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # The test client speaks httpx2 (starlette's fork): the same request, rebuilt in its types.
        forwarded = httpx2.Request(
            request.method, str(request.url), headers=request.headers.raw, content=request.read()
        )
        answer = self._client.send(forwarded)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


@pytest.fixture
def brand(runtime: Runtime, db: Session) -> BrandCredentials:
    registered = register_brand(
        db, name="Green Grocer", redirect_uris=[REDIRECT], public=False, clock=runtime.clock
    )
    db.commit()
    return BrandCredentials(registered.brand.client_id, registered.client_secret)


@pytest.fixture
def customer(client: TestClient) -> str:
    """Ada, with a profile, logged in to the portal of the test client."""
    token = sign_up(client, "ada@example.org")
    profile = {"email": "ada@example.org", "dietary": ["vegan"], "household_size": 3, "given_name": "Ada"}
    assert client.put("/v1/me/profile", json=profile, headers=bearer(token)).status_code == 200
    assert portal_login(client, "ada@example.org").status_code == 303
    return token


@pytest.fixture
def sdk(client: TestClient, brand: BrandCredentials, clock: FakeClock) -> Any:
    with ConsentryClient(
        ISSUER,
        client_id=brand.client_id,
        client_secret=brand.client_secret,
        redirect_uri=REDIRECT,
        transport=AppTransport(client),
        clock=clock,
    ) as consentry:
        yield consentry


def approve(client: TestClient, url: str, **consent_args: Any) -> str:
    """The customer opens the authorization URL and approves; returns the callback URL."""
    assert url.startswith(f"{ISSUER}/oauth/authorize?")
    params = dict(parse_qsl(urlsplit(url).query))
    answer = consent(client, params, **consent_args)
    assert answer.status_code == 302, answer.text[:300]
    location: str = answer.headers["location"]
    return location


def connect(sdk: ConsentryClient, client: TestClient, offer_id: Any, **consent_args: Any) -> GrantSession:
    """The whole flow through the SDK: authorization URL, consent, callback."""
    request = sdk.authorization_url(offer_id=offer_id)
    callback = approve(client, request.url, **consent_args)
    return sdk.handle_callback(callback, expected_state=request.state, code_verifier=request.code_verifier)


def test_discovery_finds_the_endpoints_of_this_issuer(sdk: ConsentryClient) -> None:
    metadata = sdk.discover()
    assert metadata.issuer == ISSUER and metadata.token_endpoint == f"{ISSUER}/oauth/token"
    assert metadata.authorization_response_iss_parameter_supported
    assert "profile:email" in metadata.scopes_supported


def test_the_authorization_url_names_the_offer_with_pkce_s256_and_a_fresh_state(sdk: ConsentryClient) -> None:
    first = sdk.authorization_url(offer_id="o-1", scopes=["email", "profile:dietary"])
    second = sdk.authorization_url(offer_id="o-1")
    params = dict(parse_qsl(urlsplit(first.url).query))
    digest = hashlib.sha256(first.code_verifier.encode()).digest()
    assert params == {
        "response_type": "code",
        "client_id": params["client_id"],
        "redirect_uri": REDIRECT,
        "state": first.state,
        "code_challenge": base64.urlsafe_b64encode(digest).rstrip(b"=").decode(),
        "code_challenge_method": "S256",
        "offer": "o-1",
        "scope": "profile:email profile:dietary",
    }
    assert "scope" not in dict(parse_qsl(urlsplit(second.url).query))
    assert first.state != second.state and first.code_verifier != second.code_verifier
    assert len(first.code_verifier) >= 43


def test_a_brand_reads_the_customers_preferences_and_reports_its_contacts(
    sdk: ConsentryClient, client: TestClient, customer: str, clock: FakeClock
) -> None:
    session = connect(sdk, client, sdk.publish_offer(OFFER).id)
    assert sdk.read_preferences(session).preferences.version == 0, "the defaults until they set any"
    quiet = {"start": "22:00", "end": "07:00", "time_zone": "UTC"}
    wanted = {"channels": ["email"], "quiet_hours": quiet, "max_contacts_per_month": 1,
              "avoid_topics": ["dating"], "do_not_sell_or_share": True}  # fmt: skip
    assert client.put("/v1/me/preferences", json=wanted, headers=bearer(customer)).status_code == 200
    read = sdk.read_preferences(session)
    assert read.grant_id == session.grant_id and read.preferences.version == 1
    assert read.preferences.quiet_hours is not None and read.preferences.quiet_hours.start == "22:00"
    assert read.preferences.channels == ["email"] and read.preferences.do_not_sell_or_share is True
    reported = sdk.report_contact(
        session.grant_id, channel="sms", contacted_at=clock.now, purpose="marketing", topics=["dating"]
    )
    assert reported.grant_id == session.grant_id and set(reported.breaches) >= {"channel", "topic"}
    assert client.delete(f"/v1/me/grants/{session.grant_id}", headers=bearer(customer)).status_code == 204
    rating = {"occasion": "grant_end", "rating": 4, "text": "kind", "share_text_with_brand": True}
    rated = client.post(f"/v1/me/grants/{session.grant_id}/feedback", json=rating, headers=bearer(customer))
    assert rated.status_code == 201, rated.text
    (seen,) = sdk.list_ratings().items
    assert (seen.rating, seen.occasion, seen.text) == (4, "grant_end", "kind")


def test_a_brand_publishes_sends_a_customer_to_consent_and_reads_what_was_granted(
    sdk: ConsentryClient, client: TestClient, customer: str
) -> None:
    offer = sdk.publish_offer(OFFER)
    assert offer.status == "active" and offer.scopes[0] == "profile:email"
    assert [o.id for o in sdk.list_offers().items] == [offer.id]
    session = connect(sdk, client, offer.id, untick=("given_name",))
    profile = sdk.read_profile(session)
    assert profile.fields == {
        "email": "ada@example.org",
        "email_verified": True,
        "dietary": ["vegan"],
        "household_size": 3,
    }
    assert profile.grant_id == session.grant_id and profile.purpose == "personalised_offers"
    grant = sdk.get_grant(profile.grant_id)
    assert grant.status == "active" and grant.offer_id == offer.id
    assert [g.id for g in sdk.list_grants(status="active").items] == [grant.id]
    log = sdk.access_log(grant_id=grant.id)
    assert [e.kind for e in log.items] == ["profile.read", "value.created", "grant.created"]
    assert "email" in log.items[0].event["fields"] and "given_name" not in log.items[0].event["fields"]


def test_a_declined_consent_or_a_forged_callback_gives_no_tokens(
    sdk: ConsentryClient, client: TestClient, customer: str
) -> None:
    offer = sdk.publish_offer(OFFER)
    request = sdk.authorization_url(offer_id=offer.id)
    declined = approve(client, request.url, decision="deny")
    with pytest.raises(OAuthError) as raised:
        sdk.handle_callback(declined, expected_state=request.state, code_verifier=request.code_verifier)
    assert raised.value.error == "access_denied"
    request = sdk.authorization_url(offer_id=offer.id)
    callback = approve(client, request.url)
    params = dict(parse_qsl(urlsplit(callback).query))
    forgeries = [
        ({**params, "state": "attacker"}, "state is not the one"),
        ({**params, "iss": "https://evil.example"}, "mix-up"),
        ({k: v for k, v in params.items() if k != "iss"}, "no iss"),
    ]
    for forged, reason in forgeries:
        with pytest.raises(InvalidCallback, match=reason):
            sdk.handle_callback(forged, expected_state=request.state, code_verifier=request.code_verifier)
    with pytest.raises(OAuthError) as wrong_verifier:
        sdk.handle_callback(callback, expected_state=request.state, code_verifier="x" * 64)
    assert wrong_verifier.value.error == "invalid_grant"


def test_an_expiring_access_token_is_refreshed_before_the_read_and_the_new_tokens_kept(
    sdk: ConsentryClient, client: TestClient, customer: str, clock: FakeClock
) -> None:
    session = connect(sdk, client, sdk.publish_offer(OFFER).id)
    kept: list[TokenSet] = []
    session.on_refresh = kept.append
    first = session.tokens
    sdk.read_profile(session)
    assert session.tokens == first and kept == []
    clock.advance(minutes=9, seconds=45)  # inside the 30 s leeway of the 10 minute token
    sdk.read_profile(session)
    assert kept == [session.tokens] and session.tokens.refresh_token != first.refresh_token
    assert session.tokens.expires_at == clock() + timedelta(minutes=10)


def test_a_token_the_broker_refuses_is_refreshed_once_and_the_read_retried(
    client: TestClient, brand: BrandCredentials, customer: str, clock: FakeClock
) -> None:
    frozen = clock()  # the brand's clock lags: it believes the token is fresh when the broker does not
    with ConsentryClient(
        ISSUER, client_id=brand.client_id, client_secret=brand.client_secret, redirect_uri=REDIRECT,
        transport=AppTransport(client), clock=lambda: frozen,
    ) as sdk:  # fmt: skip
        session = connect(sdk, client, sdk.publish_offer(OFFER).id)
        first = session.tokens
        clock.advance(minutes=11)
        assert sdk.read_profile(session).fields["email"] == "ada@example.org"
        assert session.tokens.access_token != first.access_token


def test_a_reused_refresh_token_revokes_the_grants_tokens_and_says_so(
    sdk: ConsentryClient, client: TestClient, customer: str
) -> None:
    session = connect(sdk, client, sdk.publish_offer(OFFER).id)
    stolen = GrantSession(session.tokens)  # a copy that was not told about the rotation
    sdk.refresh(session)
    with pytest.raises(RefreshRejected, match="used before") as raised:
        sdk.refresh(stolen)
    assert raised.value.error == "invalid_grant"
    with pytest.raises(RefreshRejected):  # the family is revoked: the rightful session is dead too
        sdk.read_profile(session)


def test_value_due_before_the_first_read_is_delivered_and_then_the_read_succeeds(
    sdk: ConsentryClient, client: TestClient, customer: str
) -> None:
    offer = sdk.publish_offer({**OFFER, "value": {**OFFER["value"], "due": {"when": "before_first_read"}}})
    session = connect(sdk, client, offer.id)
    with pytest.raises(ValueOverdue) as overdue:
        sdk.read_profile(session)
    assert overdue.value.status == 403 and overdue.value.grant_id == str(session.grant_id)
    assert overdue.value.obligation_id is not None and overdue.value.due_at is not None
    with pytest.raises(ValidationFailed) as wrong:
        sdk.deliver_value(session.grant_id, **{**VOUCHER, "currency": "USD"})
    assert [e["pointer"] for e in wrong.value.errors] == ["/currency"]
    delivered = sdk.deliver_value(session.grant_id, obligation_id=overdue.value.obligation_id, **VOUCHER)
    assert delivered.state == "delivered" and str(delivered.id) == overdue.value.obligation_id
    assert sdk.read_profile(session).fields["email"] == "ada@example.org"
    assert [o.state for o in sdk.list_value(session.grant_id)] == ["delivered"]


def test_the_brand_answers_a_customers_dispute(
    sdk: ConsentryClient, client: TestClient, customer: str
) -> None:
    session = connect(sdk, client, sdk.publish_offer(OFFER).id)
    obligation = sdk.deliver_value(session.grant_id, **VOUCHER)
    me = bearer(log_in(client, "ada@example.org"))
    disputed = client.post(
        f"/v1/me/value/{obligation.id}/dispute", json={"reason": "code refused"}, headers=me
    )
    assert disputed.status_code == 200, disputed.text
    answered = sdk.answer_dispute(session.grant_id, obligation.id, answer="try CODE-5678")
    assert answered.state == "disputed" and answered.dispute is not None
    assert (answered.dispute.reason, answered.dispute.answer) == ("code refused", "try CODE-5678")


def test_a_revoked_grant_is_grant_inactive_and_unknown_ids_are_not_found(
    sdk: ConsentryClient, client: TestClient, customer: str
) -> None:
    session = connect(sdk, client, sdk.publish_offer(OFFER).id)
    sdk.end_grant(session.grant_id)
    with pytest.raises(GrantInactive) as raised:
        sdk.read_profile(session)
    assert raised.value.grant_status == "revoked" and raised.value.slug == "grant-revoked"
    assert raised.value.since is not None and raised.value.type.startswith("https://consentry.dev/problems/")
    with pytest.raises(NotFound):
        sdk.get_grant(uuid4())
    with pytest.raises(ValidationFailed) as invalid:
        sdk.publish_offer({**OFFER, "grant_duration_days": 0})
    assert invalid.value.errors[0]["pointer"] == "/grant_duration_days"


def test_the_brand_attests_deletion_once_the_grant_has_ended(
    sdk: ConsentryClient, client: TestClient, customer: str, clock: FakeClock
) -> None:
    session = connect(sdk, client, sdk.publish_offer(OFFER).id)
    with pytest.raises(Conflict) as live:
        sdk.attest_deletion(session.grant_id, outcome="deleted", completed_at=clock.now)
    assert live.value.slug == "grant-not-ended" and live.value.status == 409
    sdk.end_grant(session.grant_id)
    clock.advance(hours=1)
    with pytest.raises(ValidationFailed) as future:
        sdk.attest_deletion(session.grant_id, outcome="deleted", completed_at=clock.now + timedelta(days=1))
    assert future.value.errors[0]["pointer"] == "/completed_at"
    attested = sdk.attest_deletion(
        session.grant_id, outcome="de-identified", completed_at=clock.now, note="aggregated, then deleted"
    )
    assert attested.grant_id == session.grant_id and attested.outcome == "de-identified" and attested.on_time
    assert attested.deletion_due_at == clock.now - timedelta(hours=1) + timedelta(
        days=OFFER["retention_days"]
    )
    with pytest.raises(Conflict) as twice:
        sdk.attest_deletion(session.grant_id, outcome="deleted", completed_at=clock.now)
    assert twice.value.slug == "deletion-already-attested"
    with pytest.raises(NotFound):
        sdk.attest_deletion(uuid4(), outcome="deleted", completed_at=clock.now)


def test_the_async_client_runs_the_same_flow(
    runtime: Runtime, client: TestClient, brand: BrandCredentials, customer: str, clock: FakeClock
) -> None:
    transport = httpx.ASGITransport(app=create_app(runtime=runtime))

    async def brand_side() -> None:
        async with AsyncConsentryClient(
            ISSUER, client_id=brand.client_id, client_secret=brand.client_secret, redirect_uri=REDIRECT,
            transport=transport, clock=clock,
        ) as sdk:  # fmt: skip
            assert (await sdk.discover()).issuer == ISSUER
            offer = await sdk.publish_offer(OFFER)
            request = await sdk.authorization_url(offer_id=offer.id)
            callback = await asyncio.to_thread(approve, client, request.url)
            session = await sdk.handle_callback(
                callback, expected_state=request.state, code_verifier=request.code_verifier
            )
            first = session.tokens
            clock.advance(minutes=11)
            assert (await sdk.read_profile(session)).fields["email"] == "ada@example.org"
            assert session.tokens.refresh_token != first.refresh_token
            await sdk.deliver_value(session.grant_id, **VOUCHER)
            assert [o.state for o in await sdk.list_value(session.grant_id)] == ["delivered"]
            await sdk.end_grant(session.grant_id)
            with pytest.raises(GrantInactive):
                await sdk.read_profile(session)
            stale = GrantSession(first)
            with pytest.raises(RefreshRejected):
                await sdk.refresh(stale)

    asyncio.run(brand_side())


def test_the_directory_through_the_sdk_list_take_a_customer_started_grant_and_decline_another(
    sdk: ConsentryClient, client: TestClient, customer: str
) -> None:
    quiet = sdk.publish_offer(OFFER)
    assert quiet.listed is False
    offer = sdk.revise_offer(quiet.id, {**OFFER, "listed": True})
    assert offer.listed and offer.version == 2
    accepted = []
    for _ in range(2):
        made = client.post(
            f"/v1/directory/offers/{offer.id}/grant",
            json={"special_category_consent": True},
            headers=bearer(customer),
        )
        assert made.status_code == 201, made.text
        accepted.append(made.json()["id"])
    grants = {str(g.id): g for g in sdk.list_grants().items}
    assert all(grants[i].decline_by is not None for i in accepted)
    session = sdk.exchange_grant_ticket(sdk.new_grant_ticket(accepted[0]).grant_ticket)
    assert str(session.grant_id) == accepted[0]
    assert sdk.read_profile(session).fields["dietary"] == ["vegan"]
    ticket = sdk.new_grant_ticket(accepted[0]).grant_ticket
    sdk.exchange_grant_ticket(ticket)
    with pytest.raises(OAuthError) as replayed:
        sdk.exchange_grant_ticket(ticket)
    assert replayed.value.error == "invalid_grant"
    declined = sdk.decline_grant(accepted[1])
    assert declined.status == "revoked" and declined.declined_at is not None
    with pytest.raises(Conflict):
        sdk.decline_grant(accepted[0])  # already read
    withdrawn = sdk.withdraw_offer(offer.id)
    assert withdrawn.status == "withdrawn"


def test_fresh_basket_takes_a_directory_grant_from_its_webhook_once_even_after_a_failed_attempt(
    sdk: ConsentryClient, client: TestClient, brand: BrandCredentials, customer: str
) -> None:
    """The example app's webhook: a signed `grant.created` with a ticket an earlier attempt already
    spent still welcomes the shopper (a new ticket), a retry of the same message delivers nothing
    twice, and an unsigned one is refused."""
    offer = sdk.publish_offer({**OFFER, "listed": True})
    made = client.post(
        f"/v1/directory/offers/{offer.id}/grant",
        json={"special_category_consent": True},
        headers=bearer(customer),
    )
    grant_id = made.json()["id"]
    spent = sdk.new_grant_ticket(grant_id).grant_ticket
    sdk.exchange_grant_ticket(spent)  # an earlier attempt got this far, then failed
    secret = "whsec_" + base64.b64encode(b"fresh basket test secret 32 byte").decode()
    config = GroceryConfig(
        broker_url=ISSUER,
        client_id=brand.client_id,
        client_secret=brand.client_secret or "",
        redirect_uri=REDIRECT,
        offer_id=str(offer.id),
        webhook_secret=secret,
    )
    app = TestClient(create_grocery(config, client=sdk))
    data = {"grant_id": grant_id, "grant_ticket": spent, "origin": "directory"}
    body = json.dumps({"type": "grant.created", "timestamp": "2026-12-03T00:00:00Z", "data": data})
    now = int(time.time())
    signature = sign_webhook(secret=secret, message_id="msg_1", timestamp=now, body=body)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": signature}
    assert app.post("/consentry/webhook", content=body, headers=headers).status_code == 204
    assert app.post("/consentry/webhook", content=body, headers=headers).status_code == 204  # a retry
    assert [o.state for o in sdk.list_value(grant_id)] == ["delivered"], "delivered once"
    forged = {**headers, "webhook-signature": "v1," + base64.b64encode(b"x" * 32).decode()}
    assert app.post("/consentry/webhook", content=body, headers=forged).status_code == 400


@pytest.mark.slow
def test_the_sdk_over_real_http_with_its_own_transport(tmp_path: Path, fresh_database_url: str) -> None:
    """What the README shows: the SDK as a brand installs it, against `consentry serve`."""
    data_dir = tmp_path / "var"
    client_id, secret = create_brand_with_cli(data_dir, fresh_database_url)
    with (
        live_server(data_dir, fresh_database_url, tmp_path / "server.log") as base,
        httpx.Client(base_url=base, timeout=30) as browser,
        ConsentryClient(base, client_id=client_id, client_secret=secret, redirect_uri=REDIRECT) as sdk,
    ):
        sign_up_over_http(browser, data_dir, "ada@example.org")
        token = log_in(browser, "ada@example.org")
        profile = {"email": "ada@example.org", "dietary": ["vegan"]}
        assert browser.patch("/v1/me/profile", json=profile, headers=bearer(token)).status_code == 200
        assert portal_login(browser, "ada@example.org").status_code == 303
        request = sdk.authorization_url(offer_id=sdk.publish_offer(OFFER).id)
        answer = consent(browser, dict(parse_qsl(urlsplit(request.url).query)))
        session = sdk.handle_callback(
            answer.headers["location"], expected_state=request.state, code_verifier=request.code_verifier
        )
        assert sdk.read_profile(session).fields == {
            "email": "ada@example.org",
            "email_verified": True,
            "dietary": ["vegan"],
        }

        async def async_brand() -> None:
            async with AsyncConsentryClient(base, client_id=client_id, client_secret=secret) as async_sdk:
                assert (await async_sdk.read_profile(session)).grant_id == session.grant_id
                assert [g.id for g in (await async_sdk.list_grants()).items] == [session.grant_id]

        asyncio.run(async_brand())
