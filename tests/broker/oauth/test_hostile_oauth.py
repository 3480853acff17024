"""Hostile input against the OAuth endpoints, which answer in RFC 6749's terms rather than the
problem+json contract schemathesis checks: the consent screen (GET and POST /oauth/authorize, logged in
and not) and the token endpoint, fuzzed with malformed, oversized, repeated, non-UTF-8 and
injection-like parameters.

Whatever arrives, the answer is never a 5xx: the token endpoint answers RFC 6749 §5.2 error JSON (or
tokens), the authorization endpoint an HTML page, a redirect to log in, or an error redirect to the
brand carrying `iss` (RFC 6749 §4.1.2.1, RFC 9207). Bounded and deterministic (derandomized, no
example database).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote_from_bytes, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from support.oauth import ISSUER, REDIRECT, BrandCredentials, authorize_params, parse_form, pkce

from broker.web.pages import CSRF_FIELD

# Some values are oversized on purpose (40 kB, past every bound): Hypothesis warns that their repr
# is large, which is the point, not a problem.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"
)

FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)

# RFC 6749 §5.2 (token endpoint) and §4.1.2.1 (authorization error redirects).
TOKEN_ERRORS = {
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
}
AUTHORIZE_ERRORS = {
    "invalid_request",
    "unauthorized_client",
    "access_denied",
    "unsupported_response_type",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
}

OAUTH_NAMES = [
    "response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge",
    "code_challenge_method", "offer", "authorization_details", "grant_type", "code", "code_verifier",
    "refresh_token", "client_secret", "decision", "fields", "special_consent", "nonce", "request",
    "request_uri", "prompt", "iss", "resource", CSRF_FIELD,
]  # fmt: skip
INJECTIONS = [
    "' OR '1'='1", "1; DROP TABLE grant;--", "<script>alert(1)</script>", '"><img src=x onerror=alert(1)>',
    "{{7*7}}", "${jndi:ldap://x}", "../../../../etc/passwd", "\r\nSet-Cookie: consentry_session=x",
    "https://evil.example/callback", "javascript:alert(1)", "//evil.example", "\x00", "null", "[]", "{}",
    '{"type":"consentry_offer"}', '[{"type":"consentry_offer","offer":"x"}]', "S256", "plain", "code token",
    "profile:email profile:*", "offers:write", "%", "%zz", "+", "&", "=", "\u202e", "\ufeff",
]  # fmt: skip

# A value as the bytes that go on the wire before percent-encoding: printable, any Unicode, raw
# bytes that are not UTF-8, injection-like, or oversized (past the form parser's 8 KiB per field).
VALUES = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30).map(str.encode),
    st.text(max_size=20).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.binary(min_size=1, max_size=20),
    st.sampled_from(INJECTIONS).map(str.encode),
    st.sampled_from([300, 5000, 9000, 40000]).map(lambda n: b"A" * n),
)
NAMES = st.one_of(st.sampled_from(OAUTH_NAMES).map(str.encode), VALUES.filter(lambda name: len(name) < 100))
# Extra pairs laid over a well-formed request: they replace, repeat or add parameters.
CHANGES = st.lists(st.tuples(NAMES, VALUES), max_size=6)


def encode(pairs: list[tuple[bytes, bytes]], raw: bytes) -> bytes:
    """A query string or urlencoded body of `pairs`, with `raw` (possibly malformed) appended."""
    encoded = b"&".join(quote_from_bytes(k).encode() + b"=" + quote_from_bytes(v).encode() for k, v in pairs)
    return encoded + raw


def hostile(
    base: dict[str, str], changes: list[tuple[bytes, bytes]], keep: bool
) -> list[tuple[bytes, bytes]]:
    """The well-formed request (or none of it) with the changes: a changed name replaces the well-formed
    value half the time and is repeated otherwise."""
    pairs = [(k.encode(), v.encode()) for k, v in base.items()] if keep else []
    for index, (name, value) in enumerate(changes):
        if index % 2 == 0:
            pairs = [(k, v) for k, v in pairs if k != name]
        pairs.append((name, value))
    return pairs


RAW = st.sampled_from([b"", b"&", b"&&=&", b"&%", b"&%zz=%G1", b"&a=b=c", b"&%ff%fe=%c3%28", b"&;=;"])


def assert_authorize_answer(response: httpx.Response) -> None:
    """An HTML page (a 413 too), a redirect to log in, or an RFC 6749 error (or code) redirect to the
    brand with `iss`."""
    assert response.status_code < 500, response.text[:500]
    if response.status_code in {302, 303}:
        location = response.headers["location"]
        if location.startswith("/portal/login?next="):
            return
        assert location.startswith(REDIRECT + "?"), location
        answer = parse_qs(urlsplit(location).query)
        assert answer["iss"] == [ISSUER]
        assert "code" in answer or answer["error"][0] in AUTHORIZE_ERRORS, location
        return
    # A body over the limit is a 413 page, as every error of this browser-read path is
    # (tests/broker/portal/test_errors.py).
    assert response.status_code in {200, 400, 403, 413}, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("text/html"), response.headers["content-type"]


def assert_token_answer(response: httpx.Response) -> None:
    """RFC 6749 §5.1 tokens or §5.2 error JSON, never cached; 413 problem+json for an over-limit body."""
    assert response.status_code < 500, response.text[:500]
    if response.status_code == 413:
        assert response.headers["content-type"] == "application/problem+json"
        return
    assert response.headers["content-type"].startswith("application/json"), response.text[:300]
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    if response.status_code == 200:
        assert body["token_type"] == "Bearer" and body["access_token"]
    else:
        assert response.status_code in {400, 401}, (response.status_code, body)
        assert body["error"] in TOKEN_ERRORS, body


@pytest.fixture
def request_params(brand: BrandCredentials, offer: dict[str, Any]) -> dict[str, str]:
    """A well-formed authorization request for the published offer."""
    _, challenge = pkce()
    return authorize_params(brand, offer["id"], challenge)


@pytest.fixture
def anonymous(client: TestClient) -> Iterator[TestClient]:
    """A browser that is not logged in, on the same app."""
    with TestClient(client.app, base_url=ISSUER) as browser:
        yield browser


@pytest.fixture
def csrf(client: TestClient, customer: str, request_params: dict[str, str]) -> str:
    """The logged-in customer's CSRF token, from a consent screen."""
    page = client.get("/oauth/authorize", params=request_params)
    assert page.status_code == 200, page.text[:300]
    return dict(parse_form(page.text).fields)[CSRF_FIELD]


@pytest.fixture
def anonymous_csrf(anonymous: TestClient) -> str:
    """The anonymous browser's CSRF token (from the login page), so its posts get past the CSRF check."""
    return dict(parse_form(anonymous.get("/portal/login").text).fields)[CSRF_FIELD]


@pytest.mark.slow  # a few seconds
@FUZZ
@given(changes=CHANGES, keep=st.booleans(), raw=RAW)
def test_consent_screen_survives_hostile_parameters(
    client: TestClient,
    anonymous: TestClient,
    customer: str,
    request_params: dict[str, str],
    changes: list[tuple[bytes, bytes]],
    keep: bool,
    raw: bytes,
) -> None:
    query = encode(hostile(request_params, changes, keep), raw).decode("ascii")
    assume(len(query) < 60_000)  # the test client refuses longer URLs (servers refuse far shorter ones)
    for browser in (client, anonymous):
        assert_authorize_answer(browser.get("/oauth/authorize?" + query, follow_redirects=False))


@pytest.mark.slow  # a few seconds
@FUZZ
@given(changes=CHANGES, keep=st.booleans(), raw=RAW, decision=st.sampled_from([b"approve", b"deny", b"\xff"]))
def test_consent_decision_survives_hostile_parameters(
    client: TestClient,
    anonymous: TestClient,
    csrf: str,
    anonymous_csrf: str,
    request_params: dict[str, str],
    changes: list[tuple[bytes, bytes]],
    keep: bool,
    raw: bytes,
    decision: bytes,
) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for browser, token in ((client, csrf), (anonymous, anonymous_csrf)):
        base = {**request_params, CSRF_FIELD: token, "fields": "email"}
        body = encode([*hostile(base, changes, keep), (b"decision", decision)], raw)
        answer = browser.post("/oauth/authorize", content=body, headers=form, follow_redirects=False)
        assert_authorize_answer(answer)


TOKEN_BASES = [
    {"grant_type": "authorization_code", "code": "not-a-code", "redirect_uri": REDIRECT,
     "code_verifier": "v" * 43},
    {"grant_type": "refresh_token", "refresh_token": "not-a-refresh-token"},
    {"grant_type": "client_credentials", "scope": "offers:read"},
]  # fmt: skip
# Basic credentials that are not base64 of UTF-8 `id:secret` (each once made Authlib raise: a 500).
BROKEN_BASIC = {"not-ascii": b"Basic \xff\xfe==", "not-utf-8": b"Basic //79", "not-base64": b"Basic %%%"}
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-8",
    "application/json",
    "multipart/form-data; boundary=x",
    "text/plain",
    "",
]


@pytest.mark.slow  # a few seconds
@FUZZ
@given(
    changes=CHANGES,
    keep=st.booleans(),
    raw=RAW,
    base=st.sampled_from(TOKEN_BASES),
    authenticate=st.sampled_from(["basic", "none", "not-ascii", "not-utf-8", "not-base64"]),
    content_type=st.sampled_from(CONTENT_TYPES),
)
def test_token_endpoint_survives_hostile_parameters(
    client: TestClient,
    brand: BrandCredentials,
    changes: list[tuple[bytes, bytes]],
    keep: bool,
    raw: bytes,
    base: dict[str, str],
    authenticate: str,
    content_type: str,
) -> None:
    headers: dict[str, bytes] = {"Content-Type": content_type.encode()} if content_type else {}
    if authenticate in BROKEN_BASIC:
        headers["Authorization"] = BROKEN_BASIC[authenticate]
    auth = brand.auth() if authenticate == "basic" else None
    body = encode(hostile(base, changes, keep), raw)
    response = client.post("/oauth/token", content=body, headers=headers, auth=auth)
    assert_token_answer(response)


def test_a_form_over_the_bounds_gets_an_oauth_error_not_a_problem(
    client: TestClient, brand: BrandCredentials
) -> None:
    """Found by the fuzzer: Starlette's 400 problem+json for a field over 8 KiB, where OAuth clients
    expect RFC 6749 error JSON."""
    data = {"grant_type": "client_credentials", "scope": "x" * 9000}
    response = client.post("/oauth/token", data=data, auth=brand.auth())
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "at most 8192 bytes" in response.json()["error_description"]


def test_a_consent_form_over_the_bounds_gets_an_error_page(client: TestClient, customer: str) -> None:
    response = client.post(
        "/oauth/authorize", data={f"f{i}": "x" for i in range(300)}, follow_redirects=False
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "at most 200 fields" in response.text


@pytest.mark.parametrize("header", BROKEN_BASIC.values(), ids=BROKEN_BASIC.keys())
def test_unreadable_basic_credentials_are_an_invalid_client(client: TestClient, header: bytes) -> None:
    """Found by the fuzzer: Authlib raised on Basic credentials that are not base64 of UTF-8 (a 500)."""
    for endpoint in ("/oauth/token", "/oauth/revoke", "/oauth/introspect"):
        response = client.post(
            endpoint,
            content=b"grant_type=client_credentials&token=x",
            headers={"Content-Type": "application/x-www-form-urlencoded", "Authorization": header},
        )
        assert response.status_code == 401, (endpoint, response.text)
        assert response.json()["error"] == "invalid_client"
        assert response.headers["www-authenticate"].startswith("Basic ")


@pytest.mark.parametrize("response_type", ['code"', "code\\", "code  token", ""])
def test_a_malformed_response_type_gets_an_error_page(
    client: TestClient, customer: str, request_params: dict[str, str], response_type: str
) -> None:
    """Found by the fuzzer: Authlib raised (a 500) quoting a response_type that holds `"` or `\\`."""
    params = {**request_params, "response_type": response_type}
    response = client.get("/oauth/authorize", params=params, follow_redirects=False)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "response_type must be" in response.text
