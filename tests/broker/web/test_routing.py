"""Guarded route lookup: passing over routers that cannot match never changes which route answers."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import _IncludedRouter
from fastapi.testclient import TestClient
from starlette.routing import Match

from broker.app import create_app
from broker.runtime import Runtime
from broker.web.routing import index_routes


def _scope(method: str, path: str, root_path: str = "") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": root_path + path, "root_path": root_path,
            "query_string": b"", "headers": []}  # fmt: skip


def _chosen(app: FastAPI, scope: dict[str, Any], *, guarded: bool) -> tuple[object, Match] | None:
    """Which top-level entry the app's router would pick for `scope` (as Starlette's loop does), asked
    through the guards or around them."""
    partial = None
    for route in app.router.routes:
        ask = route.matches if guarded else type(route).matches.__get__(route)
        match, _ = ask(dict(scope))
        if match is Match.FULL:
            return route, match
        if match is Match.PARTIAL and partial is None:
            partial = (route, match)
    return partial


def _paths(app: FastAPI) -> list[tuple[str, str]]:
    """A concrete (method, path) for every route under the app, its parameters filled in."""
    found: list[tuple[str, str]] = []

    def walk(candidates: list[Any]) -> None:
        for candidate in candidates:
            if isinstance(candidate, _IncludedRouter):
                walk(candidate.effective_candidates())
                continue
            path = re.sub(r"\{[^}]+\}", "00000000-0000-4000-8000-000000000000", candidate.path)
            for method in sorted(getattr(candidate, "methods", None) or {"GET"}):
                found.append((method, path))

    walk(app.router.routes)
    return found


def test_every_included_router_of_the_broker_is_guarded(runtime: Runtime) -> None:
    app = create_app(runtime=runtime)
    included = [r for r in app.router.routes if isinstance(r, _IncludedRouter)]
    assert len(included) > 20
    # Guarded already: a second pass finds the same routers (a FastAPI upgrade that moves the
    # internals the guard reads fails here, not silently in production).
    assert all("guarded" in getattr(r.matches, "__qualname__", "") for r in included)


def test_the_guard_never_changes_which_route_answers(runtime: Runtime) -> None:
    app = create_app(runtime=runtime)
    paths = _paths(app)
    assert len(paths) > 100
    variants = [(m, p) for m, p in paths] + [(m, p.rstrip("/") or "/") for m, p in paths]
    variants += [(m, p + "/") for m, p in paths] + [("GET", "/nowhere"), ("POST", "/portal"), ("GET", "/v1")]
    for method, path in variants:
        for root_path in ("", "/behind/a/proxy"):
            scope = _scope(method, path, root_path)
            assert _chosen(app, scope, guarded=True) == _chosen(app, scope, guarded=False), (method, path)


def test_a_guarded_router_is_not_asked_about_paths_it_cannot_answer() -> None:
    asked: list[str] = []
    app = FastAPI()
    for prefix in ("/a", "/b"):
        router = APIRouter(prefix=prefix)
        router.get("/items/{item}")(lambda item: {"item": item})
        app.include_router(router)
    assert index_routes(app) == 2
    first = app.router.routes[-2]
    assert isinstance(first, _IncludedRouter)
    unguarded = first.original_router.matches

    def spy(scope: Any) -> Any:
        asked.append(scope["path"])
        return unguarded(scope)

    first.original_router.matches = spy  # type: ignore[method-assign]
    with TestClient(app) as http:
        assert http.get("/b/items/7").json() == {"item": "7"}
        assert http.get("/a/items/8").json() == {"item": "8"}
        assert http.get("/c/items/9").status_code == 404
    assert asked == ["/a/items/8"]  # "/b/…" and "/c/…" never reached router /a
