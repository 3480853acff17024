"""Plain routes: an endpoint answered without FastAPI's dependency solving is still the documented one."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from broker.api import brand, health, oauth
from broker.web.plain import answer_plainly


async def documented(request: Request) -> Response:
    return JSONResponse({"plain": "fastapi_inner_astack" not in request.scope})  # set by API routes


def test_the_plain_route_answers_and_the_api_route_documents() -> None:
    router = APIRouter(prefix="/v1")
    router.get("/thing", operation_id="thing")(documented)
    answer_plainly(router, "/thing", documented)
    app = FastAPI()
    app.include_router(router)
    with TestClient(app) as http:
        assert http.get("/v1/thing").json() == {"plain": True}
        refused = http.head("/v1/thing")  # only what the API route declares: a GET route would take HEAD
        assert refused.status_code == 405 and refused.headers["allow"] == "GET"
        assert http.get("/openapi.json").json()["paths"]["/v1/thing"]["get"]["operationId"] == "thing"


def test_an_endpoint_must_be_documented_to_be_answered_plainly() -> None:
    router = APIRouter(prefix="/v1")
    with pytest.raises(ValueError, match="not the documented API route of /v1/thing"):
        answer_plainly(router, "/thing", documented)


def test_the_broker_answers_its_hottest_paths_plainly() -> None:
    for router, path, endpoint in ((health.router, "/healthz", health.healthz),
                                   (brand.router, "/v1/profile", brand.read_profile),
                                   (oauth.router, "/oauth/token", oauth.token)):  # fmt: skip
        first = router.routes[0]
        assert isinstance(first, Route) and not isinstance(first, APIRoute)
        assert (first.path, first.endpoint.__wrapped__) == (path, endpoint)  # type: ignore[attr-defined]
