"""Stand-in servers for the clients' tests: `httpx.MockTransport`s whose answers carry the
`Consentry-API-Version` header a real server puts on every answer (broker.versions)."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from broker.versions import API_VERSION_HEADER, API_VERSIONS

Handler = Callable[[httpx.Request], httpx.Response]


def consentry(handler: Handler) -> httpx.MockTransport:
    """A transport that answers with `handler`, naming the API versions as a real server does."""

    def answer(request: httpx.Request) -> httpx.Response:
        response = handler(request)
        response.headers.setdefault(API_VERSION_HEADER, ", ".join(API_VERSIONS))
        return response

    return httpx.MockTransport(answer)
