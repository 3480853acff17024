"""The auditor API client: the token on every request, answers decoded and checked against the contract,
and each failure one of `AuditorAPIError`'s kinds."""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx
import pytest
from support import served

from clients.auditor import (
    AuditorAPIError,
    AuditorClient,
    HTTPProblem,
    MalformedResponse,
    ServerUnreachable,
    TokenRefused,
    inclusion_proof,
    leaf_hash,
    root_hash,
    verify_inclusion,
)

TOKEN = "auditor-token-1"
Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, base_url: str = "https://consentry.example") -> AuditorClient:
    return AuditorClient(base_url, TOKEN, transport=served.consentry(handler))


def answer(response: httpx.Response) -> Handler:
    return lambda request: response


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_requests_carry_the_token_and_keep_the_base_urls_path() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="log+01020304+AQ==\n")

    with client(handler, "https://example.org/consentry") as api:
        assert api.verifier_key() == "log+01020304+AQ=="
    assert str(seen[0].url) == "https://example.org/consentry/v1/audit/key"
    assert seen[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_an_entries_page_is_decoded_to_bytes() -> None:
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        items = [{"index": 4, "entry": b64(b"{}")}, {"index": 5, "entry": ""}]
        return httpx.Response(200, json={"start": 4, "end": 6, "tree_size": 9, "entries": items, "next": 6})

    with client(handler) as api:
        page = api.entries(4, 6)
        api.entries(4)
    assert (page.start, page.end, page.tree_size, page.next) == (4, 6, 9, 6)
    assert (page.indices, page.entries) == ([4, 5], [b"{}", b""])
    assert [dict(url.params) for url in seen] == [{"start": "4", "end": "6"}, {"start": "4"}]


def test_an_inclusion_proof_is_decoded_and_verifies() -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(5)]
    body = {
        "index": 3,
        "tree_size": 5,
        "leaf_hash": b64(leaves[3]),
        "proof": [b64(node) for node in inclusion_proof(leaves, 3)],
    }
    with client(answer(httpx.Response(200, json=body))) as api:
        proof = api.inclusion_proof(3, 5)
    assert verify_inclusion(proof.leaf_hash, proof.index, proof.tree_size, proof.proof, root_hash(leaves))


def test_a_consistency_proof_for_other_sizes_is_refused() -> None:
    body = {"first": 2, "second": 9, "proof": []}
    with (
        client(answer(httpx.Response(200, json=body))) as api,
        pytest.raises(MalformedResponse, match="2 and 8"),
    ):
        api.consistency_proof(2, 8)


def test_a_problem_answer_keeps_its_details() -> None:
    body = {"type": "https://consentry.example/problems/audit-range", "title": "Outside", "status": 400}
    response = httpx.Response(400, json=body | {"detail": "start 9 is past the log"})
    with client(answer(response)) as api, pytest.raises(HTTPProblem) as raised:
        api.entries(9)
    assert (raised.value.status, raised.value.type) == (400, body["type"])
    assert str(raised.value) == "the server answered 400 Outside: start 9 is past the log"


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_says_so(status: int) -> None:
    response = httpx.Response(status, json={"title": "Unauthorized", "detail": "unknown token"})
    with client(answer(response)) as api, pytest.raises(TokenRefused) as raised:
        api.checkpoint()
    assert str(raised.value) == f"the server refused the token ({status} Unauthorized: unknown token)"


def test_an_error_without_problem_details_uses_the_reason_phrase() -> None:
    response = httpx.Response(502, text="<html>bad gateway</html>")
    with client(answer(response)) as api, pytest.raises(HTTPProblem) as raised:
        api.checkpoint()
    assert str(raised.value) == "the server answered 502 Bad Gateway"


@pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ReadTimeout])
def test_no_answer_at_all_is_server_unreachable(error: type[httpx.TransportError]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error("no route", request=request)

    with client(handler) as api, pytest.raises(ServerUnreachable, match="cannot reach https://consentry"):
        api.checkpoint()


PAGE = {"start": 0, "end": 1, "tree_size": 1, "entries": [{"index": 0, "entry": "e30="}], "next": None}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not json", "the entries page is not JSON"),
        (b"[]", "not a JSON object"),
        (PAGE | {"tree_size": -1}, "'tree_size' is -1, not a non-negative integer"),
        (PAGE | {"start": True}, "'start' is True"),
        (PAGE | {"next": "1"}, "'next' is '1'"),
        (PAGE | {"entries": [{"index": 0}]}, "entry 0 (item 0 of its page) is not standard base64"),
        (PAGE | {"entries": [{"index": 0, "entry": "e30"}]}, "is not standard base64"),
        (
            PAGE | {"entries": [{"index": False, "entry": "e30="}]},
            "item 0 of the entries page has no integer",
        ),
        (PAGE | {"entries": [7]}, "item 0 of the entries page has no integer 'index'"),
    ],
)
def test_a_page_breaking_the_contract_is_malformed(content: bytes | dict[str, object], reason: str) -> None:
    response = (
        httpx.Response(200, content=content)
        if isinstance(content, bytes)
        else httpx.Response(200, json=content)
    )
    with client(answer(response)) as api, pytest.raises(MalformedResponse) as raised:
        api.entries(0)
    assert reason in str(raised.value)


@pytest.mark.parametrize(
    ("proof", "reason"),
    [
        ({"first": 1, "second": 2}, "has no 'proof' list"),
        ({"first": 1, "second": 2, "proof": [b64(b"short")]}, "hash 0 is 5 bytes"),
        ({"first": 1, "second": 2, "proof": ["!!"]}, "hash 0 is not standard base64"),
    ],
)
def test_a_proof_breaking_the_contract_is_malformed(proof: dict[str, object], reason: str) -> None:
    with (
        client(answer(httpx.Response(200, json=proof))) as api,
        pytest.raises(MalformedResponse, match=reason),
    ):
        api.consistency_proof(1, 2)


def test_a_checkpoint_that_is_not_utf8_is_malformed() -> None:
    response = httpx.Response(200, content=b"\xff\xfe")
    with client(answer(response)) as api, pytest.raises(MalformedResponse, match="not UTF-8"):
        api.checkpoint()


def test_every_failure_is_an_auditor_api_error() -> None:
    for kind in (ServerUnreachable, HTTPProblem, TokenRefused, MalformedResponse):
        assert issubclass(kind, AuditorAPIError)
