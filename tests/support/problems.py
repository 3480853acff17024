"""The OpenAPI document tells the truth about problems: every problem an operation answers while the
test suite runs must be one of the types its entry in the document lists (or one that any request may
meet, `ANSWERED_ANYWHERE`).

`record_answered_problems()` wraps the exception handlers every app gets from
`broker.web.problems.install`, so each problem+json answer is checked against the document (built once
per test process, when first needed) as it is sent: by the route that answered it (method and path
template) and its status. `Ledger.check()` fails the test during which an undocumented one was sent.
Routes outside the document (the portal, a test's own routes) and the OAuth endpoints (RFC 6749
errors, not problems) are not checked.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from broker.api import contract
from broker.errors import ANSWERED_ANYWHERE
from broker.web import problems

Handler = Callable[[Request, Any], Response | Awaitable[Response]]
# (method, path template) -> status -> the type URIs documented there
Documented = dict[tuple[str, str], dict[int, set[str]]]
_ANYWHERE = {kind.type_uri for kind in ANSWERED_ANYWHERE}


def documented_problems(spec: dict[str, Any]) -> Documented:
    """Each operation's problem types by status, as the OpenAPI document lists them."""
    found: Documented = {}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            found[(method.upper(), path)] = {
                int(status): set(contract.documented_types(response))
                for status, response in operation["responses"].items()
                if status[0] in "45"
            }
    return found


class Ledger:
    """The undocumented problems answered since the last check."""

    def __init__(self) -> None:
        self.undocumented: list[str] = []
        self._documented: Documented | None = None

    def documented(self) -> Documented:
        if self._documented is None:
            from broker.openapi import generate  # builds an app: only once a problem is answered

            self._documented = documented_problems(generate())
        return self._documented

    def record(self, request: Request, response: Response) -> None:
        """Check one answer: a problem of a documented operation must be one it documents."""
        route = request.scope.get("route")
        if not isinstance(route, APIRoute) or route.path_format.startswith(("/oauth/", "/.well-known/")):
            return
        operation = self.documented().get((request.method, route.path_format))
        if operation is None or not response.headers.get("content-type", "").startswith(
            contract.PROBLEM_JSON
        ):
            return
        uri = json.loads(bytes(response.body))["type"]
        if uri not in _ANYWHERE and uri not in operation.get(response.status_code, set()):
            self.undocumented.append(
                f"{request.method} {route.path_format} answered {response.status_code} {uri}, which its "
                "OpenAPI entry does not list: add it to the route's responses= (contract.problems)"
            )

    def check(self) -> None:
        """Fail the current test if an undocumented problem was answered during it."""
        found, self.undocumented = self.undocumented, []
        if found:
            pytest.fail("\n".join(dict.fromkeys(found)), pytrace=False)


def _recording(ledger: Ledger, handler: Handler) -> Handler:
    async def record(request: Request, exc: Any) -> Response:
        answer = handler(request, exc)
        response = await answer if inspect.isawaitable(answer) else answer
        ledger.record(request, response)
        return response

    return record


def record_answered_problems(ledger: Ledger) -> None:
    """From now on, every app's problem handlers report their answers to `ledger`."""
    install = problems.install

    def install_recording(app: FastAPI, **options: Any) -> None:
        install(app, **options)
        for key, handler in list(app.exception_handlers.items()):
            app.exception_handlers[key] = _recording(ledger, handler)

    problems.install = install_recording


def assert_problem(answer: Any, status: int, slug: str, pointer: str | None = None) -> None:
    """`answer` is the RFC 9457 problem `slug` with `status` (and, given `pointer`, an error at it)."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json", answer.headers["content-type"]
    assert answer.json()["type"] == f"https://consentry.dev/problems/{slug}", answer.text
    if pointer is not None:
        assert pointer in [e["pointer"] for e in answer.json().get("errors", [])], answer.text
