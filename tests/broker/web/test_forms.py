"""OAuth forms are read by our own urlencoded reader (`broker.web.oauth_request.urlencoded`), which must
answer what Starlette's parser (python-multipart's) answers for the same body and bounds: the same
fields, or the same refusal. The bounds hold over HTTP, in OAuth's terms."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import example, given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers
from starlette.formparsers import FormParser, MultiPartException
from support.oauth import BrandCredentials

from broker.web.oauth_request import MAX_FIELD_BYTES, MAX_FIELDS, urlencoded


def starlette(body: bytes) -> tuple[dict[str, list[str]], str | None]:
    """What Starlette's own parser reads from `body`, with our bounds."""

    async def stream() -> AsyncIterator[bytes]:
        yield body

    async def parse() -> tuple[dict[str, list[str]], str | None]:
        parser = FormParser(Headers(), stream(), max_fields=MAX_FIELDS, max_part_size=MAX_FIELD_BYTES)
        try:
            form = await parser.parse()
        except MultiPartException as exc:
            return {}, exc.message
        values: dict[str, list[str]] = {}
        for key, value in form.multi_items():
            assert isinstance(value, str)
            values.setdefault(key, []).append(value)
        return values, None

    return asyncio.run(parse())


# Bytes that matter to the format, often; any byte, sometimes.
_PIECES = st.one_of(
    st.sampled_from(
        [b"&", b"=", b"+", b"%", b"%2", b"%26", b"%3D", b"%C3%A9", b"%FF", b"%zz", b"a", b"b", b"\xe9", b" "]
    ),
    st.binary(min_size=1, max_size=3),
)


@settings(max_examples=300)
@given(st.lists(_PIECES, max_size=40).map(b"".join))
@example(b"")
@example(b"&&a&&=&=x&b=c=d&a=2&")
@example(b"grant_type=client_credentials&scope=offers%3Aread+offers%3Awrite")
@example(b"redirect_uri=https%3A%2F%2Fshop.example%2Fcb%3Fa%3D1%26b%3D2&name=%E2%82%AC+%C3%A9")
def test_our_reader_answers_what_starlettes_answers(body: bytes) -> None:
    assert urlencoded(body) == starlette(body)


@pytest.mark.parametrize(
    "body",
    [
        b"&".join(b"f%d=v" % n for n in range(MAX_FIELDS)),  # just at the bound
        b"&".join(b"f%d=v" % n for n in range(MAX_FIELDS + 1)),  # one over
        b"&".join(b"f%d=v" % n for n in range(MAX_FIELDS + 1)) + b"&big=" + b"x" * MAX_FIELD_BYTES,
        b"a=" + b"x" * (MAX_FIELD_BYTES - 1),  # name and value together at the bound
        b"a=" + b"x" * MAX_FIELD_BYTES,  # one byte over
        b"a" * (MAX_FIELD_BYTES + 1),  # a name alone, over
        b"ok=1&" + b"x" * (MAX_FIELD_BYTES + 1) + b"=" + b"&" * 300,
    ],
    ids=[
        "fields-at-bound",
        "fields-over",
        "fields-over-then-big",
        "size-at-bound",
        "size-over",
        "name-over",
        "mixed",
    ],
)
def test_the_bounds_are_starlettes(body: bytes) -> None:
    assert urlencoded(body) == starlette(body)


def test_a_form_over_the_bounds_is_an_oauth_invalid_request(
    client: TestClient, brand: BrandCredentials
) -> None:
    many = {f"f{n}": "v" for n in range(MAX_FIELDS + 1)}
    for form in ({"grant_type": "client_credentials", **many}, {"grant_type": "x" * (MAX_FIELD_BYTES + 1)}):
        answer = client.post("/oauth/token", data=form, auth=(brand.client_id, brand.client_secret))
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "invalid_request"
        assert "send at most 200 fields of at most 8192 bytes each" in answer.json()["error_description"]


def test_a_content_type_with_parameters_and_capitals_is_still_urlencoded(
    client: TestClient, brand: BrandCredentials
) -> None:
    answer = client.post(
        "/oauth/token",
        content=b"grant_type=client_credentials&scope=offers%3Aread",
        headers={"Content-Type": "Application/X-WWW-Form-Urlencoded; charset=UTF-8"},
        auth=(brand.client_id, brand.client_secret),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["scope"] == "offers:read"
