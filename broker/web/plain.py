"""Plain routes: the hottest endpoints answered without FastAPI's per-request machinery.

For every request an API route solves the endpoint's dependencies (even one with none: it builds a
response to patch, parses cookies and the query), validates and serialises the return value through
its response model, and walks the included router's route context. Measured on the development
machine, that costs about 30 µs for `/healthz` and 150 µs for `/v1/profile` (with three
dependencies), as much as the rest of the request. So an endpoint called at that rate is written as a
Starlette endpoint (`Request` in, `Response` out: it reads what it needs from the request itself) and
declared twice: as the router's API route, which documents it in the OpenAPI document, and, through
`answer_plainly`, as a plain route tried first, which answers. Both run the very same function.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["answer_plainly"]

Endpoint = Callable[[Request], Awaitable[Response]]


def answer_plainly(router: APIRouter, path: str, endpoint: Endpoint) -> None:
    """Answer `path` (under the router's prefix) with `endpoint`, through a plain route tried before
    the router's API routes, for exactly the methods of its API route: the router must declare
    `endpoint` as the API route of `path` too, and the OpenAPI document describes what the plain
    route answers."""
    full = router.prefix + path
    documented = next(
        (r for r in router.routes if isinstance(r, APIRoute) and r.endpoint is endpoint and r.path == full),
        None,
    )
    if documented is None:
        raise ValueError(f"{endpoint.__name__} is not the documented API route of {full}")
    declared = frozenset(documented.methods or ())

    # A Starlette route for GET answers HEAD too (and FastAPI rebuilds an included route, so its methods
    # cannot be narrowed): a HEAD of the profile read would be a read, logged, its answer withheld.
    @functools.wraps(endpoint)
    async def only_declared(request: Request) -> Response:
        if request.method not in declared:
            raise HTTPException(405, headers={"Allow": ", ".join(sorted(declared))})
        return await endpoint(request)

    router.routes.insert(0, Route(full, only_declared, methods=list(declared), include_in_schema=False))
