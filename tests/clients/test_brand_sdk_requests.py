"""The brand SDK's requests and error mapping, against `httpx.MockTransport`: what goes on the wire
(client authentication, the deletion attestation), how each answer becomes a result or an exception,
and that concurrent reads refresh a grant's tokens once."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl
from uuid import uuid4

import httpx
import pytest

import clients.brand
from clients.brand import (
    AsyncConsentryClient,
    Conflict,
    ConsentryClient,
    ConsentryError,
    Forbidden,
    GrantInactive,
    GrantSession,
    InsufficientScope,
    MalformedResponse,
    NotFound,
    OAuthError,
    ProblemError,
    PurposeNotGranted,
    PurposeRequired,
    RateLimited,
    ServerUnreachable,
    ServiceUnavailable,
    TokenSet,
    Unauthenticated,
    ValidationFailed,
    ValueOverdue,
)

ISSUER = "https://broker.example"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PROBLEMS = "https://consentry.dev/problems/"
Handler = Callable[[httpx.Request], httpx.Response]

METADATA = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/oauth/authorize",
    "token_endpoint": f"{ISSUER}/oauth/token",
    "code_challenge_methods_supported": ["S256"],
    "authorization_response_iss_parameter_supported": True,
    "consentry_api_versions": ["1"],
}
ATTESTATION = {
    "grant_id": "6f1c1d5e-8d7a-4c1e-9a59-3f7e2f0c8b11",
    "outcome": "de-identified",
    "completed_at": "2026-11-20T12:00:00+00:00",
    "attested_at": "2026-11-23T09:00:00+00:00",
    "deletion_due_at": "2026-12-01T00:00:00+00:00",
    "on_time": True,
}


GRANT = uuid4()


def access_token(n: int) -> str:
    """A JWT-shaped access token naming the grant (the SDK reads the claim, the broker checks it)."""
    claims = base64.urlsafe_b64encode(json.dumps({"grant_id": str(GRANT), "n": n}).encode()).decode()
    return f"e30.{claims.rstrip('=')}.sig"


class Broker:
    """A scripted broker: metadata and tokens answered, every request kept, API answers from `api`."""

    def __init__(self, api: Handler, *, issuer: str = ISSUER) -> None:
        self.api, self.issuer = api, issuer
        self.requests: list[httpx.Request] = []
        self.issued = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.startswith("/.well-known/oauth-authorization-server"):
            return httpx.Response(200, json={**METADATA, "issuer": self.issuer})
        if request.url.path == "/oauth/token":
            self.issued += 1
            return httpx.Response(
                200,
                json={
                    "access_token": access_token(self.issued),
                    "expires_in": 600,
                    "refresh_token": f"rt-{self.issued}",
                },
            )
        return self.api(request)

    def form(self, index: int) -> dict[str, str]:
        return dict(parse_qsl(self.requests[index].content.decode()))


def sdk(broker: Broker, **options: Any) -> ConsentryClient:
    options.setdefault("client_secret", "cs_secret")
    return ConsentryClient(
        ISSUER, client_id="brd_1", transport=httpx.MockTransport(broker), clock=lambda: NOW, **options
    )


def problem(status: int, slug: str, **members: Any) -> Handler:
    body = {"type": PROBLEMS + slug, "title": slug.replace("-", " "), "status": status, "detail": f"{slug}!"}
    return lambda request: httpx.Response(
        status, json=body | members, headers={"content-type": "application/problem+json"}
    )


def test_a_deletion_attestation_posts_outcome_time_and_note_with_the_brand_token() -> None:
    broker = Broker(lambda request: httpx.Response(201, json=ATTESTATION))
    completed = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    with sdk(broker) as consentry:
        attested = consentry.attest_deletion(
            ATTESTATION["grant_id"], outcome="de-identified", completed_at=completed, note="hashed ids kept"
        )
    token_request, request = broker.requests[1], broker.requests[2]
    assert broker.form(1) == {
        "grant_type": "client_credentials",
        "scope": " ".join(clients.brand.BRAND_SCOPES),
    }
    assert token_request.headers["authorization"] == "Basic " + base64.b64encode(b"brd_1:cs_secret").decode()
    assert (request.method, str(request.url)) == (
        "POST",
        f"{ISSUER}/v1/grants/{ATTESTATION['grant_id']}/deletion",
    )
    assert request.headers["authorization"] == f"Bearer {access_token(1)}"
    assert json.loads(request.content) == {
        "outcome": "de-identified",
        "completed_at": "2026-11-20T12:00:00+00:00",
        "note": "hashed ids kept",
    }
    assert attested.on_time and attested.outcome == "de-identified" and attested.completed_at == completed


def test_attesting_for_a_grant_that_has_not_ended_is_a_conflict() -> None:
    broker = Broker(problem(409, "grant-state", grant_status="active"))
    with sdk(broker) as consentry, pytest.raises(Conflict) as raised:
        consentry.attest_deletion(uuid4(), outcome="deleted", completed_at=NOW)
    assert (raised.value.status, raised.value.slug, raised.value.detail) == (
        409,
        "grant-state",
        "grant-state!",
    )
    assert raised.value.extensions == {"grant_status": "active"}


@pytest.mark.parametrize(
    ("changes", "reason"),
    [({"completed_at": datetime(2026, 11, 20)}, "timezone-aware"), ({"outcome": "shredded"}, "outcome")],
)
def test_an_attestation_the_broker_could_not_accept_is_refused_before_sending(
    changes: dict[str, Any], reason: str
) -> None:
    broker = Broker(lambda request: httpx.Response(201, json=ATTESTATION))
    arguments: dict[str, Any] = {"outcome": "deleted", "completed_at": NOW, **changes}
    with sdk(broker) as consentry, pytest.raises(ValueError, match=reason):
        consentry.attest_deletion(uuid4(), **arguments)
    assert broker.requests == []


def test_the_async_client_attests_the_same_way() -> None:
    broker = Broker(lambda request: httpx.Response(201, json=ATTESTATION))

    async def attest() -> Any:
        async with AsyncConsentryClient(
            ISSUER, client_id="brd_1", client_secret="cs_secret", transport=httpx.MockTransport(broker)
        ) as consentry:
            return await consentry.attest_deletion(
                ATTESTATION["grant_id"], outcome="deleted", completed_at=NOW
            )

    assert asyncio.run(attest()).on_time
    assert json.loads(broker.requests[-1].content)["completed_at"] == NOW.isoformat()


def test_a_public_client_sends_its_id_in_the_form_and_no_secret() -> None:
    broker = Broker(lambda request: httpx.Response(200))
    session = GrantSession(TokenSet("old", NOW - timedelta(seconds=1), refresh_token="rt-0"))
    with sdk(broker, client_secret=None) as consentry:
        consentry.refresh(session)
    assert broker.form(1) == {"grant_type": "refresh_token", "refresh_token": "rt-0", "client_id": "brd_1"}
    assert "authorization" not in broker.requests[1].headers
    assert session.tokens.refresh_token == "rt-1" and session.grant_id == GRANT


def test_a_client_secret_is_form_encoded_inside_basic_authentication() -> None:
    broker = Broker(lambda request: httpx.Response(200, json={"items": [], "next_cursor": None}))
    with sdk(broker, client_secret="a:b c") as consentry:
        consentry.list_offers()
    assert (
        broker.requests[1].headers["authorization"]
        == "Basic " + base64.b64encode(b"brd_1:a%3Ab%20c").decode()
    )


def test_metadata_naming_another_issuer_is_refused() -> None:
    broker = Broker(lambda request: httpx.Response(200), issuer="https://evil.example")
    with sdk(broker) as consentry, pytest.raises(MalformedResponse, match=r"evil\.example"):
        consentry.discover()


def test_an_issuer_with_a_path_finds_its_metadata_under_the_well_known_prefix() -> None:
    broker = Broker(lambda request: httpx.Response(200))
    with (
        ConsentryClient(
            f"{ISSUER}/tenant", client_id="brd_1", transport=httpx.MockTransport(broker)
        ) as consentry,
        pytest.raises(MalformedResponse),
    ):
        consentry.discover()  # the scripted broker names the bare issuer: refused, but asked right
    assert str(broker.requests[0].url) == f"{ISSUER}/.well-known/oauth-authorization-server/tenant"


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (problem(401, "unauthenticated"), Unauthenticated),
        (problem(403, "insufficient-scope"), InsufficientScope),
        (
            problem(403, "grant-expired", grant_status="expired", since="2026-11-01T00:00:00+00:00"),
            GrantInactive,
        ),
        (
            problem(403, "value-overdue", obligation_id="ob-1", due_at="2026-11-22T09:00:00+00:00"),
            ValueOverdue,
        ),
        (problem(403, "purpose-not-granted", purpose="research", granted=["marketing"]), PurposeNotGranted),
        (problem(400, "purpose-required", granted=["marketing", "research"]), PurposeRequired),
        (problem(403, "csrf"), Forbidden),
        (problem(404, "not-found"), NotFound),
        (problem(409, "value-settled"), Conflict),
        (problem(422, "validation", errors=[{"pointer": "/kind", "detail": "kind!"}]), ValidationFailed),
        (problem(429, "too-many-attempts"), RateLimited),
        (problem(503, "unavailable"), ServiceUnavailable),
        (problem(418, "teapot"), ProblemError),
    ],
)
def test_each_problem_type_is_its_own_exception(answer: Handler, kind: type[ProblemError]) -> None:
    with sdk(Broker(answer)) as consentry, pytest.raises(ProblemError) as raised:
        consentry.get_grant(uuid4())
    assert type(raised.value) is kind and raised.value.detail.endswith("!")


def test_problem_members_are_typed_on_their_exceptions() -> None:
    overdue = problem(
        403, "value-overdue", obligation_id="ob-1", due_at="2026-11-22T09:00:00+00:00", grant_id="g"
    )
    with sdk(Broker(overdue)) as consentry, pytest.raises(ValueOverdue) as raised:
        consentry.get_grant(uuid4())
    assert (raised.value.obligation_id, raised.value.due_at) == (
        "ob-1",
        datetime(2026, 11, 22, 9, tzinfo=UTC),
    )
    several = problem(400, "purpose-required", granted=["marketing", "research"])
    with sdk(Broker(several)) as consentry, pytest.raises(PurposeRequired) as unsaid:
        consentry.get_grant(uuid4())
    assert unsaid.value.granted == ["marketing", "research"]
    throttling = Broker(lambda request: httpx.Response(429, json={}, headers={"Retry-After": "30"}))
    with sdk(throttling) as consentry, pytest.raises(RateLimited) as throttled:
        consentry.list_grants()
    assert throttled.value.retry_after == 30


def test_an_error_without_problem_details_keeps_its_status_and_reason() -> None:
    with (
        sdk(Broker(lambda request: httpx.Response(502, text="<html>"))) as consentry,
        pytest.raises(ProblemError) as raised,
    ):
        consentry.list_grants()
    assert (raised.value.status, raised.value.type, str(raised.value)) == (
        502,
        "about:blank",
        "502 Bad Gateway",
    )


def test_a_success_that_breaks_the_contract_is_malformed() -> None:
    with (
        sdk(Broker(lambda request: httpx.Response(200, json={"items": "no"}))) as consentry,
        pytest.raises(MalformedResponse, match="GET /v1/grants"),
    ):
        consentry.list_grants()
    with (
        sdk(Broker(lambda request: httpx.Response(200, text="not json"))) as consentry,
        pytest.raises(MalformedResponse, match="not JSON"),
    ):
        consentry.list_grants()


def test_a_token_endpoint_error_is_an_oauth_error() -> None:
    def broker(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(
                401, json={"error": "invalid_client", "error_description": "unknown client"}
            )
        return httpx.Response(200, json=METADATA)

    with (
        ConsentryClient(
            ISSUER, client_id="brd_1", client_secret="x", transport=httpx.MockTransport(broker)
        ) as api,
        pytest.raises(OAuthError) as raised,
    ):
        api.list_grants()
    assert (raised.value.error, raised.value.description, raised.value.status) == (
        "invalid_client",
        "unknown client",
        401,
    )


def test_no_answer_at_all_is_server_unreachable() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with (
        ConsentryClient(ISSUER, client_id="brd_1", transport=httpx.MockTransport(down)) as consentry,
        pytest.raises(ServerUnreachable, match=r"cannot reach https://broker\.example"),
    ):
        consentry.discover()


def test_a_refused_brand_token_is_replaced_once_and_then_kept() -> None:
    def api(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == f"Bearer {access_token(1)}":
            return problem(401, "unauthenticated")(request)
        return httpx.Response(200, json={"items": [], "next_cursor": None})

    broker = Broker(api)
    with sdk(broker) as consentry:
        consentry.list_grants()
        consentry.list_grants()
    assert broker.issued == 2
    paths = [r.url.path for r in broker.requests]
    assert paths[1:] == ["/oauth/token", "/v1/grants", "/oauth/token", "/v1/grants", "/v1/grants"]


def test_ids_cannot_leave_their_path_segment() -> None:
    broker = Broker(problem(404, "not-found"))
    with sdk(broker) as consentry, pytest.raises(NotFound):
        consentry.get_grant("../offers?x=1")
    assert broker.requests[-1].url.raw_path == b"/v1/grants/..%2Foffers%3Fx%3D1"


def test_concurrent_reads_with_an_expired_token_refresh_once() -> None:
    profile = {"sub": "s", "grant_id": str(uuid4()), "purpose": "research", "fields": {"email": "a@b.c"}}

    async def api(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)
        return httpx.Response(200, json=profile)

    broker = Broker(lambda request: httpx.Response(500))

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/profile":
            return await api(request)
        await asyncio.sleep(0.01)  # the refresh is slow: the other reads must wait for it
        return broker(request)

    session = GrantSession(TokenSet("at-0", NOW - timedelta(minutes=1), refresh_token="rt-0"))

    async def reads() -> None:
        async with AsyncConsentryClient(
            ISSUER,
            client_id="brd_1",
            client_secret="x",
            transport=httpx.MockTransport(handler),
            clock=lambda: NOW,
        ) as consentry:
            await asyncio.gather(*(consentry.read_profile(session) for _ in range(5)))

    asyncio.run(reads())
    assert broker.issued == 1 and session.tokens.refresh_token == "rt-1"


def test_every_failure_is_a_consentry_error() -> None:
    names = [name for name in clients.brand.__all__ if name[0].isupper()]
    errors = [getattr(clients.brand, name) for name in names]
    for kind in errors:
        if isinstance(kind, type) and issubclass(kind, Exception):
            assert issubclass(kind, ConsentryError), kind


def test_the_public_api_is_exactly_all() -> None:
    public = {name for name in dir(clients.brand) if not name.startswith("_")}
    modules = {
        "async_client",
        "authorization",
        "client",
        "endpoints",
        "errors",
        "models",
        "protocol",
        "tokens",
        "webhooks",
        "versions",
        "sealed",
    }
    assert public - modules == set(clients.brand.__all__) - {"__version__"}
    assert clients.brand.__all__ == sorted(clients.brand.__all__, key=lambda n: (not n.isupper(), n))
